from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Tasks (im-task)"

    def ready(self) -> None:
        # Every process (gateway, logic, worker, bridge) knows every task, so apply_async
        # honours eager mode and the bridge can look any task_type up.
        from tasks.registry import load_processors

        load_processors()
