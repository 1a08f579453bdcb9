"""Projects and memberships.

Who may create a project is a setting (projects.models.can_create_projects: by default staff users
and users a staff member allowed); the creator becomes its admin. Managers edit projects and members, but
nobody grants a role above their own or changes a member who outranks them, and a project always
keeps at least one admin.
"""

import django_filters
from django.db import transaction
from rest_framework.exceptions import PermissionDenied

from annotation_app.lib.errors import Conflict
from annotation_app.lib.roles import Role, role_at_least
from annotation_app.lib.viewsets import ProjectScopedViewSet
from annotation_app.projects.api.serializers import MembershipSerializer, ProjectSerializer
from annotation_app.projects.models import Membership, Project, can_create_projects


class ProjectFilter(django_filters.FilterSet):
    modality = django_filters.CharFilter()

    class Meta:
        model = Project
        fields = ["modality"]


class ProjectViewSet(ProjectScopedViewSet):
    queryset = Project.objects.all()
    serializer_class = ProjectSerializer
    project_field = ""
    filterset_class = ProjectFilter
    ordering_fields = ["name", "created_at", "id"]

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "request", None) is not None and self.request.user.is_authenticated:
            context["roles"] = self._roles()
        return context

    def perform_create(self, serializer):
        if not can_create_projects(self.request.user):
            raise PermissionDenied("You may not create projects; ask a staff member to allow you.")
        with transaction.atomic():
            project = serializer.save(created_by=self.request.user)
            project.add_member(self.request.user, Role.ADMIN)
        self._roles()[project.pk] = Role.ADMIN


class MembershipFilter(django_filters.FilterSet):
    class Meta:
        model = Membership
        fields = ["project", "user", "role"]


class MembershipViewSet(ProjectScopedViewSet):
    queryset = Membership.objects.select_related("user", "project")
    serializer_class = MembershipSerializer
    filterset_class = MembershipFilter
    ordering_fields = ["id", "role"]

    def _check_grant(self, project_id: int, role: str | None) -> None:
        """A non-superuser may not hand out (or touch) a role above their own."""
        if self.request.user.is_superuser or role is None:
            return
        if not role_at_least(self.role_in(project_id), role):
            raise PermissionDenied("You cannot grant or change a role above your own.")

    def _keeps_an_admin(self, membership: Membership, new_role: str | None) -> None:
        if membership.role != Role.ADMIN or new_role == Role.ADMIN:
            return
        others = Membership.objects.filter(project_id=membership.project_id, role=Role.ADMIN)
        if not others.exclude(pk=membership.pk).exists():
            raise Conflict("a project must keep at least one admin")

    def perform_create(self, serializer):
        project = serializer.validated_data["project"]
        self.check_create_permission(project.pk)
        self._check_grant(project.pk, serializer.validated_data["role"])
        with transaction.atomic():
            serializer.save()

    def perform_update(self, serializer):
        membership = serializer.instance
        self._check_grant(membership.project_id, membership.role)
        self._check_grant(membership.project_id, serializer.validated_data.get("role"))
        with transaction.atomic():
            Membership.objects.select_for_update().filter(project_id=membership.project_id).exists()
            self._keeps_an_admin(membership, serializer.validated_data.get("role", membership.role))
            serializer.save()

    def perform_destroy(self, instance):
        self._check_grant(instance.project_id, instance.role)
        with transaction.atomic():
            Membership.objects.select_for_update().filter(project_id=instance.project_id).exists()
            self._keeps_an_admin(instance, None)
            instance.delete()
