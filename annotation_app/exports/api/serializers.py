"""Export jobs: create with {project, case?, format, statuses?}; read status, progress and the link."""

from rest_framework import serializers

from annotation_app.annotations.models import TargetStatus
from annotation_app.exports.models import CASE_FORMATS, PROJECT_FORMAT, ExportJob
from annotation_app.imaging.models import Case, CaseStatus
from annotation_app.lib.serializers import ScopedPrimaryKeyRelatedField, StrictModelSerializer
from annotation_app.projects.models import Project


class ExportJobSerializer(StrictModelSerializer):
    project = ScopedPrimaryKeyRelatedField(project_path="", queryset=Project.objects.all())
    case = ScopedPrimaryKeyRelatedField(queryset=Case.objects.all(), required=False, allow_null=True)
    format = serializers.ChoiceField(choices=[*CASE_FORMATS, PROJECT_FORMAT])
    statuses = serializers.ListField(
        child=serializers.ChoiceField(choices=TargetStatus.values), required=False, max_length=6
    )
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id", "project", "case", "format", "statuses", "status", "progress", "error", "filename", "size",
            "created_by", "created_at", "started_at", "finished_at", "download_url",
        ]  # fmt: skip
        read_only_fields = [
            "id", "status", "progress", "error", "filename", "size", "created_by", "created_at", "started_at",
            "finished_at", "download_url",
        ]  # fmt: skip

    def get_download_url(self, job) -> str | None:
        return f"/api/export-jobs/{job.pk}/download/" if job.status == "succeeded" else None

    def validate(self, attrs):
        case, fmt = attrs.get("case"), attrs["format"]
        if fmt == PROJECT_FORMAT:
            if case is not None:
                raise serializers.ValidationError({"case": ["A project export takes no case."]})
            return attrs
        if case is None:
            raise serializers.ValidationError({"case": [f"Give the case to export as {fmt}."]})
        if case.project_id != attrs["project"].pk:
            raise serializers.ValidationError({"case": ["Must belong to the project."]})
        if case.status not in (CaseStatus.READY, CaseStatus.ARCHIVED):
            raise serializers.ValidationError({"case": [f"The case is {case.status}; only ready cases export."]})
        return attrs
