"""Django admin for accounts: the stock user admin plus GoChat's profile fields."""
from django.contrib import admin
from django.db import models
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    # Avatars typed without a scheme are https (Django 6 behaviour, no warning).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("username", "nickname", "email", "is_active", "is_staff", "date_joined")
    search_fields = ("username", "email", "nickname")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("GoChat profile", {"fields": ("nickname", "avatar", "status", "send_read_receipts")}))
