"""Django admin for accounts: the stock user admin plus GoChat's profile fields."""
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "nickname", "email", "is_active", "is_staff", "date_joined")
    search_fields = ("username", "email", "nickname")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("GoChat profile", {"fields": ("nickname", "avatar", "status")}))
