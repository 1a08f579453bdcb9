"""PACS serializers. A connection's username and password are write-only: no response carries them."""

from urllib.parse import urlsplit

from rest_framework import serializers

from annotation_app.annotations.models import Target
from annotation_app.lib.serializers import ScopedPrimaryKeyRelatedField, StrictModelSerializer, StrictSerializer
from annotation_app.pacs.client import is_uid
from annotation_app.pacs.models import DicomWebConnection, JobStatus, PacsImport, SegSend
from annotation_app.projects.models import Project


def _check_url(value: str, required: bool = True) -> str:
    if not value:
        if required:
            raise serializers.ValidationError("This field is required.")
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise serializers.ValidationError("must be an http(s) URL with a host.")
    if parts.username or parts.password:
        raise serializers.ValidationError("must not hold a user or password; use the credential fields.")
    if parts.query or parts.fragment:
        raise serializers.ValidationError("must not have a query or fragment.")
    return value.rstrip("/")


class ConnectionSerializer(StrictModelSerializer):
    project = serializers.PrimaryKeyRelatedField(queryset=Project.objects.all(), required=False, allow_null=True)
    username = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=200)
    password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=500, style={"input_type": "password"}
    )
    has_credentials = serializers.BooleanField(read_only=True)
    create_only_fields = ("project",)

    class Meta:
        model = DicomWebConnection
        fields = [
            "id", "name", "project", "qido_url", "wado_url", "stow_url",
            "username", "password", "has_credentials", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "has_credentials", "created_at"]

    def validate_qido_url(self, value):
        return _check_url(value)

    def validate_wado_url(self, value):
        return _check_url(value)

    def validate_stow_url(self, value):
        return _check_url(value, required=False)


class StudySearchSerializer(StrictSerializer):
    project = serializers.IntegerField()
    patient_id = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
    patient_name = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
    study_date = serializers.RegexField(r"^(\d{8})?(-(\d{8})?)?$", required=False, allow_blank=True, default="")
    modality = serializers.RegexField(r"^[A-Z]{0,16}$", required=False, allow_blank=True, default="")
    accession_number = serializers.CharField(required=False, allow_blank=True, max_length=16, default="")
    description = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")


class SeriesSearchSerializer(StrictSerializer):
    project = serializers.IntegerField()
    study_uid = serializers.CharField(max_length=64)

    def validate_study_uid(self, value):
        if not is_uid(value):
            raise serializers.ValidationError("not a DICOM UID.")
        return value


class ImportSerializer(StrictModelSerializer):
    project = ScopedPrimaryKeyRelatedField(project_path="", queryset=Project.objects.all())
    connection = serializers.PrimaryKeyRelatedField(queryset=DicomWebConnection.objects.all())
    progress = serializers.SerializerMethodField()
    case_status = serializers.SerializerMethodField()

    class Meta:
        model = PacsImport
        fields = [
            "id", "project", "connection", "study_uid", "series_uid", "description", "status", "progress",
            "n_instances", "error", "case", "case_status", "created_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = [
            "id", "status", "progress", "n_instances", "error", "case", "case_status", "created_at", "finished_at",
        ]  # fmt: skip
        # a series already in the project is a 409 with the reason, from services.create_import
        validators: list = []

    def validate(self, attrs):
        for name in ("study_uid", "series_uid"):
            if not is_uid(attrs.get(name, "")):
                raise serializers.ValidationError({name: ["not a DICOM UID."]})
        if not attrs["connection"].usable_by(attrs["project"].pk):
            raise serializers.ValidationError({"connection": ["No such connection for this project."]})
        return attrs

    def get_progress(self, job) -> float:
        """Fetching is the first half, the ingest's conversion of the staged case the second."""
        if job.status == JobStatus.RUNNING and job.case_id and job.case is not None:
            return round(0.5 + 0.5 * float(job.case.progress), 3)
        return float(job.progress)

    def get_case_status(self, job) -> str | None:
        return job.case.status if job.case_id and job.case is not None else None


class SendSerializer(StrictModelSerializer):
    target = ScopedPrimaryKeyRelatedField(project_path="case__project", queryset=Target.objects.select_related("case"))
    connection = serializers.PrimaryKeyRelatedField(queryset=DicomWebConnection.objects.all())
    project_source = "target__case__project"
    revision_number = serializers.IntegerField(source="revision.number", read_only=True)

    class Meta:
        model = SegSend
        fields = [
            "id", "target", "revision", "revision_number", "connection", "status", "error", "attempts",
            "automatic", "sop_instance_uid", "series_instance_uid", "study_instance_uid", "created_at", "sent_at",
        ]  # fmt: skip
        read_only_fields = [
            "id", "revision", "revision_number", "status", "error", "attempts", "automatic",
            "sop_instance_uid", "series_instance_uid", "study_instance_uid", "created_at", "sent_at",
        ]  # fmt: skip
        validators: list = []

    def validate(self, attrs):
        if not attrs["connection"].usable_by(attrs["target"].case.project_id):
            raise serializers.ValidationError({"connection": ["No such connection for this project."]})
        return attrs
