from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        # Keep group conversations' members in step with group membership: groups
        # sends signals, messaging listens (groups must not import messaging).
        from messaging import group_sync  # noqa: F401
