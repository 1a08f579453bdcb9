"""The base viewsets: every queryset is narrowed to the caller's projects; writes run in a transaction.

Creates are checked against the project named in the validated data (the serializer's
`project_id_for_create`), so nobody creates objects in a project where they lack the role. Objects of
projects the caller does not belong to are not found (404), never forbidden (403), so ids do not leak.
"""

from django.db import transaction
from rest_framework import viewsets
from rest_framework.exceptions import NotFound, PermissionDenied

from annotation_app.lib.pagination import StandardPagination
from annotation_app.lib.permissions import required_role
from annotation_app.lib.roles import role_at_least


class ProjectScopedViewSet(viewsets.ModelViewSet):
    #: ORM path from the model to its Project ("" when the model is Project).
    project_field: str = "project"
    #: action -> least role; merged over permissions.DEFAULT_REQUIRED_ROLES
    required_roles: dict = {}
    pagination_class = StandardPagination

    # --- scoping
    def _roles(self) -> dict[int, str]:
        if not hasattr(self, "_role_cache"):
            from annotation_app.projects.models import Membership

            user = self.request.user
            self._role_cache = (
                dict(Membership.objects.filter(user=user).values_list("project_id", "role"))
                if user.is_authenticated
                else {}
            )
        return self._role_cache

    def role_in(self, project_id: int | None) -> str | None:
        if project_id is None:
            return None
        return self._roles().get(project_id)

    def has_role(self, project_id: int | None, needed: str) -> bool:
        return self.request.user.is_superuser or role_at_least(self.role_in(project_id), needed)

    def project_id_of(self, obj) -> int:
        if not self.project_field:
            return obj.pk
        value = obj
        for part in self.project_field.split("__"):
            value = getattr(value, part)
        return value.pk

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return queryset.none()
        if self.request.user.is_superuser:
            return queryset
        key = f"{self.project_field}__in" if self.project_field else "pk__in"
        return queryset.filter(**{key: list(self._roles().keys())})

    # --- creation: the project comes from the payload, so check the role there.
    def check_create_permission(self, project_id: int | None) -> None:
        if self.request.user.is_superuser:
            return
        role = self.role_in(project_id)
        if role is None:
            raise NotFound("No such project, or you are not a member of it.")
        if not role_at_least(role, required_role(self)):
            raise PermissionDenied("Your role in this project does not allow this action.")

    def perform_create(self, serializer):
        project_id = serializer.project_id_for_create(serializer.validated_data)
        self.check_create_permission(project_id)
        with transaction.atomic():
            serializer.save(**self.extra_create_fields())

    def extra_create_fields(self) -> dict:
        return {}

    def perform_update(self, serializer):
        with transaction.atomic():
            serializer.save()

    def perform_destroy(self, instance):
        with transaction.atomic():
            instance.delete()

    def action_data(self, serializer_class) -> dict:
        """Validate an action's request body with `serializer_class` (unknown fields are refused)."""
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class AppendOnlyViewSet(ProjectScopedViewSet):
    """For rows that are never changed or removed (mask revisions, interaction events)."""

    http_method_names = ["get", "post", "head", "options"]


class CreateReadViewSet(ProjectScopedViewSet):
    """Rows that are created and read through the API but changed only by actions (prompts, runs)."""

    http_method_names = ["get", "post", "head", "options"]
