from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import User
from accounts.permissions import CapabilityAdminMixin
from accounts.roles import Capability


@admin.register(User)
class UserAdmin(CapabilityAdminMixin, DjangoUserAdmin):
    capability = Capability.USER_MANAGE
    allow_add = allow_change = True
    fieldsets = DjangoUserAdmin.fieldsets + (("Role", {"fields": ("role",)}),)
    add_fieldsets = DjangoUserAdmin.add_fieldsets + (("Role", {"fields": ("role",)}),)
    list_display = ("username", "first_name", "last_name", "role", "is_active", "last_login")
    list_filter = ("role", "is_active")
