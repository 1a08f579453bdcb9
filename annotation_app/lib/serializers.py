"""Serializer base: unknown fields are an error, and each serializer says how to find its project."""
from rest_framework import serializers


class StrictModelSerializer(serializers.ModelSerializer):
    #: ORM-like path from validated data to the project id, e.g. "case" -> case.project_id.
    project_source: str = "project"

    def to_internal_value(self, data):
        if isinstance(data, dict):
            allowed = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - allowed)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
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
