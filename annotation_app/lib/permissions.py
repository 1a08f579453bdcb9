"""The one permission policy of the API.

A viewset declares `project_field` (the ORM path from its model to the Project, "" for Project itself)
and `required_roles`, a map from action to the least role that may perform it. Reads need any
membership (querysets are already narrowed to the caller's projects, so other projects' objects are 404);
writes need the mapped role in the object's project. Superusers may do everything.
"""

from rest_framework.permissions import BasePermission

from annotation_app.lib.roles import Role, role_at_least

DEFAULT_REQUIRED_ROLES = {
    "list": Role.ANNOTATOR,
    "retrieve": Role.ANNOTATOR,
    "create": Role.MANAGER,
    "update": Role.MANAGER,
    "partial_update": Role.MANAGER,
    "destroy": Role.MANAGER,
}


def required_role(view) -> str:
    roles = {**DEFAULT_REQUIRED_ROLES, **getattr(view, "required_roles", {})}
    action = getattr(view, "action", None)
    # Unknown actions need the highest role rather than none: fail closed.
    return roles.get(action, Role.ADMIN)


class ProjectRolePermission(BasePermission):
    message = "Your role in this project does not allow this action."

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        return True

    def has_object_permission(self, request, view, obj):
        if request.user.is_superuser:
            return True
        project_id = view.project_id_of(obj)
        return role_at_least(view.role_in(project_id), required_role(view))
