"""Assignment: a manager gives cases (one or a batch) to an annotator and a reviewer.

POST /api/cases/assign/ {project, cases: [ids], annotator?: user id | null, reviewer?: user id | null}
-> {updated: n}. A key left out is left as it is; null clears it. The annotator must be a member of the
project, the reviewer a reviewer or above. Cases of another project make the whole batch a 400; nothing
is half-assigned.
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from annotation_app.imaging.models import Case
from annotation_app.lib.roles import Role, role_at_least
from annotation_app.lib.serializers import ScopedPrimaryKeyRelatedField, StrictSerializer
from annotation_app.lib.viewsets import ProjectScopedViewSet
from annotation_app.projects.models import Project

MAX_BATCH = 1000
_Assigned = inline_serializer("Assigned", {"updated": serializers.IntegerField()})


class AssignSerializer(StrictSerializer):
    project = ScopedPrimaryKeyRelatedField(project_path="", queryset=Project.objects.all())
    cases = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=MAX_BATCH)
    annotator = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(), allow_null=True, required=False
    )
    reviewer = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(), allow_null=True, required=False
    )

    def validate(self, attrs):
        project = attrs["project"]
        if "annotator" not in attrs and "reviewer" not in attrs:
            raise serializers.ValidationError({"annotator": ["Give an annotator, a reviewer, or both."]})
        for key, least in (("annotator", Role.ANNOTATOR), ("reviewer", Role.REVIEWER)):
            user = attrs.get(key)
            if user is not None and not (user.is_superuser or role_at_least(project.role_of(user), least)):
                raise serializers.ValidationError({key: [f"{user.get_username()} is not a {least} of this project."]})
        ids = set(attrs["cases"])
        found = set(Case.objects.filter(project=project, pk__in=ids).values_list("pk", flat=True))
        if found != ids:
            raise serializers.ValidationError({"cases": [f"Not cases of this project: {sorted(ids - found)}."]})
        return attrs


class CaseAssignmentViewSet(ProjectScopedViewSet):
    """Only the `assign` action (routed explicitly in urls.py)."""

    queryset = Case.objects.all()
    required_roles = {"assign": Role.MANAGER}

    @extend_schema(request=AssignSerializer, responses={200: _Assigned})
    def assign(self, request):
        body = self.action_data(AssignSerializer)
        self.check_create_permission(body["project"].pk)
        fields = {}
        if "annotator" in body:
            fields["assignee"] = body["annotator"]
        if "reviewer" in body:
            fields["reviewer"] = body["reviewer"]
        with transaction.atomic():
            updated = Case.objects.filter(project=body["project"], pk__in=body["cases"]).update(**fields)
        return Response({"updated": updated})
