"""REST routes of the tasks app; included under /api/v1/ by gochat_site.urls."""
from django.urls import path

from tasks import search_views

urlpatterns = [
    path("search", search_views.SearchView.as_view(), name="search"),
]
