from django.contrib import admin

from annotation_app.exports.models import ExportJob


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "case", "format", "status", "progress", "created_by", "created_at"]
    list_filter = ["status", "format"]
    readonly_fields = ["created_at", "started_at", "finished_at"]
