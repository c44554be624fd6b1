"""ASGI entry point: HTTP through Django, WebSocket /ws through the Channels gateway."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gochat_site.settings")
# Set up Django (apps, settings) before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from messaging.gateway import daphne_options  # noqa: E402
from messaging.gateway.consumer import GatewayConsumer  # noqa: E402
from messaging.gateway.origin import allowed_hosts_origin_validator  # noqa: E402

# Under daphne: close frames (1007, 1009) instead of dropped TCP, and a bounded send
# buffer per socket (messaging/gateway/daphne_options.py).
daphne_options.apply()

# A gateway without a unique snowflake worker id refuses to start (gochat_site/ids.py).
from gochat_site import ids  # noqa: E402

ids.ensure_worker_id()

websocket_urlpatterns = [path("ws", GatewayConsumer.as_asgi())]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Browsers send Origin: only pages from ALLOWED_HOSTS may open a socket.
        # Clients that send no Origin (mobile, CLI) pass; they authenticate by token.
        "websocket": allowed_hosts_origin_validator(URLRouter(websocket_urlpatterns)),
    }
)

# Last: everything above lives as long as the process (gochat_site/gc_freeze.py).
from gochat_site.gc_freeze import freeze_startup_objects  # noqa: E402

freeze_startup_objects()
