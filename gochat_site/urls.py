"""URL map: REST API under /api/v1/, admin, schema/docs, health checks."""
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from gochat_site import api_schema, errors, health, metrics  # noqa: F401 - api_schema registers its extensions
from gochat_site.api_errors import json_error_view
from gochat_site.api_root import ApiRootView
from gochat_site.id_params import register_id_converter

register_id_converter()

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("groups.urls")),
    path("", include("messaging.urls")),
    path("", include("tasks.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    # The API root lists the endpoints (browsable); the endpoints themselves follow.
    path("api/v1/", ApiRootView.as_view(patterns=api_v1), name="api-root"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api-auth/", include("rest_framework.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    # The browser chat client; last, so it never shadows an API route.
    path("", include("web.urls")),
]

# JSON errors for unknown URLs and crashes outside DRF views, in the API's error body.
handler400 = json_error_view(400, errors.INVALID_PARAMS, "bad request")
handler404 = json_error_view(404, errors.NOT_FOUND, "not found")
handler500 = json_error_view(500, errors.INTERNAL, "internal error")
