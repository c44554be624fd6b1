"""Accounts REST routes; included under /api/v1/ by gochat_site.urls."""
from django.urls import path

from accounts import views

urlpatterns = [
    path("users/register", views.RegisterView.as_view(), name="users-register"),
    path("users/profile", views.ProfileView.as_view(), name="users-profile"),
    path("users/lookup", views.LookupView.as_view(), name="users-lookup"),
    path("auth/login", views.LoginView.as_view(), name="auth-login"),
    path("auth/refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
]
