"""Routes of the browser client; mounted at the site root by gochat_site.urls."""
from django.urls import path

from web import views

app_name = "web"

urlpatterns = [
    path("", views.chat_page, name="chat"),
]
