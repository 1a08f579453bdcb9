from django.contrib import admin

from annotation_app.imaging.models import Case


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "kind", "modality", "status", "assignee", "created_at"]
    list_filter = ["status", "kind", "modality", "project"]
    search_fields = ["name", "study_uid", "series_uid"]
    # Geometry and storage keys come from ingest; editing them by hand would break masks and exports.
    readonly_fields = [
        "shape",
        "spacing",
        "origin",
        "direction",
        "image_key",
        "original_key",
        "study_uid",
        "series_uid",
        "created_at",
        "updated_at",
    ]
    raw_id_fields = ["assignee"]
