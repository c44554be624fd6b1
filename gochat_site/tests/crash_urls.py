"""A URL map with a view that crashes, to test handler500 (the handlers are the site's)."""
from django.urls import path

from gochat_site.urls import handler404, handler500, urlpatterns as site_urlpatterns  # noqa: F401


def boom(request):  # noqa: ANN001 - Django view
    raise RuntimeError("crash for the test")


urlpatterns = [path("boom", boom), *site_urlpatterns]
