from django.contrib import admin

from annotation_app.timing.models import TargetTiming


@admin.register(TargetTiming)
class TargetTimingAdmin(admin.ModelAdmin):
    """Read-only: the rows are recomputed from events, jobs and revisions (timing.service)."""

    list_display = ["target", "project", "round", "label", "status", "time_s", "dice", "n_edits", "computed_at"]
    list_filter = ["project", "status", "modality"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
