from django.contrib import admin

from annotation_app.imaging.models import Case


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "name",
        "project",
        "kind",
        "modality",
        "status",
        "progress",
        "assignee",
        "created_at",
    )
    list_filter = ("status", "kind", "modality", "project")
    search_fields = ("name", "study_uid", "series_uid")
    readonly_fields = ("shape", "spacing", "origin", "direction", "image_key", "original_key", "progress")
