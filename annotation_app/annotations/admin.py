from django.contrib import admin

from annotation_app.annotations.models import InteractionEvent, MaskRevision, Prompt, Target


class ReadOnlyAdmin(admin.ModelAdmin):
    """Append-only rows: the admin may look, never change or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin):
    list_display = ["id", "label", "case", "round", "status", "created_by", "updated_at"]
    list_filter = ["status", "label"]
    search_fields = ["label", "case__name"]
    # Review states move only through the model's transitions.
    readonly_fields = ["status", "reviewed_by", "reviewed_at", "submitted_at", "created_at", "updated_at"]
    raw_id_fields = ["case", "round", "created_by"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "target", "frame", "kind", "author", "withdrawn", "created_at"]
    list_filter = ["kind", "withdrawn"]
    raw_id_fields = ["target", "author"]


@admin.register(MaskRevision)
class MaskRevisionAdmin(ReadOnlyAdmin):
    list_display = ["id", "target", "number", "source", "voxel_count", "author", "created_at"]
    list_filter = ["source"]
    exclude = ["data"]


@admin.register(InteractionEvent)
class InteractionEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "user", "project", "target", "client_ts", "received_at"]
    list_filter = ["kind", "project"]
    search_fields = ["client_event_id"]
