"""Case serializer: geometry and status are read-only (the ingest owns them); managers may rename,
assign and archive."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from annotation_app.imaging.models import Case, CaseStatus
from annotation_app.lib.roles import Role, role_at_least
from annotation_app.lib.serializers import StrictModelSerializer


class CaseSerializer(StrictModelSerializer):
    targets_count = serializers.IntegerField(read_only=True, default=0)
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(), allow_null=True, required=False
    )
    assignee_username = serializers.CharField(source="assignee.username", read_only=True, default=None)
    reviewer = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(), allow_null=True, required=False
    )
    reviewer_username = serializers.CharField(source="reviewer.username", read_only=True, default=None)

    class Meta:
        model = Case
        fields = [
            "id",
            "project",
            "name",
            "kind",
            "modality",
            "shape",
            "spacing",
            "origin",
            "direction",
            "frame_rate",
            "study_uid",
            "series_uid",
            "status",
            "progress",
            "error",
            "assignee",
            "assignee_username",
            "reviewer",
            "reviewer_username",
            "image_meta",
            "created_at",
            "updated_at",
            "targets_count",
        ]
        read_only_fields = [
            "project",
            "kind",
            "shape",
            "spacing",
            "origin",
            "direction",
            "frame_rate",
            "study_uid",
            "series_uid",
            "progress",
            "error",
            "image_meta",
            "created_at",
            "updated_at",
        ]

    def validate_status(self, value):
        # Only archiving (and un-archiving a ready case) is a manager's decision; the rest is the ingest's.
        current = self.instance.status if self.instance else None
        allowed = {(CaseStatus.READY, CaseStatus.ARCHIVED), (CaseStatus.ARCHIVED, CaseStatus.READY)}
        if value != current and (current, value) not in allowed:
            raise serializers.ValidationError(f"a case cannot go from {current} to {value} by hand")
        return value

    def validate_assignee(self, user):
        if user is None or self.instance is None:
            return user
        if (
            not user.is_superuser
            and not user.memberships.filter(project_id=self.instance.project_id).exists()
        ):
            raise serializers.ValidationError("the assignee must be a member of the case's project")
        return user

    def validate_reviewer(self, user):
        if user is None or self.instance is None or user.is_superuser:
            return user
        if not role_at_least(self.instance.project.role_of(user), Role.REVIEWER):
            raise serializers.ValidationError("the reviewer must be a reviewer (or above) of the case's project")
        return user


class UploadFormSerializer(serializers.Serializer):
    """The non-file fields of POST /api/cases/upload/."""

    project = serializers.IntegerField()
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    modality = serializers.CharField(required=False, allow_blank=True, max_length=2)
    assignee = serializers.IntegerField(required=False, allow_null=True)
