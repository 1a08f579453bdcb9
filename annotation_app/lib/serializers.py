"""Serializer base: unknown fields are an error, related objects are looked up only inside the caller's
projects, and each serializer says how to find its project."""

from rest_framework import serializers


def member_project_ids(user):
    """A subquery of the ids of the projects `user` belongs to (any role)."""
    from annotation_app.projects.models import Membership

    return Membership.objects.filter(user=user).values("project_id")


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key by id that only finds objects in projects the requesting user belongs to.

    `project_path` is the ORM path from the related model to its Project ("" when it is Project).
    An object of another project reads as "does not exist", exactly like a missing id, so the
    response never reveals what other projects contain.
    """

    def __init__(self, project_path: str = "project", **kwargs):
        self.project_path = project_path
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        # A batch endpoint may hand over its lookups in advance: context["prefetched"][Model] = {pk: obj},
        # already limited to the user's projects.
        cache = self.context.get("prefetched", {}).get(self.queryset.model)
        if cache is None:
            return super().to_internal_value(data)
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            return cache[int(data)]
        except (KeyError, ValueError):
            self.fail("does_not_exist", pk_value=data)

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return queryset.none()
        if user.is_superuser:
            return queryset
        key = f"{self.project_path}__in" if self.project_path else "pk__in"
        return queryset.filter(**{key: member_project_ids(user)})


class StrictModelSerializer(serializers.ModelSerializer):
    #: ORM-like path from validated data to the project id, e.g. "case__project" -> case.project_id.
    project_source: str = "project"
    #: writable on create, refused on update (e.g. the project or case an object belongs to)
    create_only_fields: tuple[str, ...] = ()

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": [f"Expected a JSON object, got {type(data).__name__}."]}
            )
        allowed = {name for name, field in self.fields.items() if not field.read_only}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        if self.instance is not None:
            frozen = sorted(set(data) & set(self.create_only_fields))
            if frozen:
                raise serializers.ValidationError(
                    {name: ["This field cannot be changed after creation."] for name in frozen}
                )
        return super().to_internal_value(data)

    def project_id_for_create(self, validated_data) -> int | None:
        value = validated_data
        for part in self.project_source.split("__"):
            if isinstance(value, dict):
                value = value.get(part)
            else:
                value = getattr(value, part, None)
            if value is None:
                return None
        return getattr(value, "pk", value)


class StrictSerializer(serializers.Serializer):
    """A plain (non-model) serializer for action bodies that also refuses unknown fields."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": [f"Expected a JSON object, got {type(data).__name__}."]}
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)
