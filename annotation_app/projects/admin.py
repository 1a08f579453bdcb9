from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from annotation_app.projects.models import Membership, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "modality", "created_at", "created_by"]
    list_filter = ["modality"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    autocomplete_fields = ["user"]


class UserAdmin(DjangoUserAdmin):
    """Django's user admin, saying why a user who made annotations cannot be deleted: mask revisions
    and interaction events are kept forever with their author, so the account is deactivated instead."""

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected:
            messages.warning(
                request,
                "Users who drew masks or whose work was timed cannot be deleted: mask revisions and "
                "interaction events keep their author for good. Deactivate the account instead "
                "(untick 'Active' on the user's page); they can then no longer sign in.",
            )
        return deleted, counts, perms_needed, protected


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, UserAdmin)
