"""The browser chat client: one page plus static files, talking to the server only
through the public REST API and the /ws WebSocket, like any other client."""
from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "web"
    verbose_name = "Web client"
