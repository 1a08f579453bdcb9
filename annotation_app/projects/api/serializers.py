"""Serializers for projects, memberships and the signed-in user."""

import re

from django.contrib.auth import get_user_model
from rest_framework import serializers

from annotation_app.lib.roles import Role
from annotation_app.lib.serializers import (
    ScopedPrimaryKeyRelatedField,
    StrictModelSerializer,
    StrictSerializer,
)
from annotation_app.projects.models import EDIT_UNASSIGNED, Membership, Project

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
#: project settings the product reads, with their validators
_SETTINGS = {"idle_threshold_s": (int, 1, 3600), EDIT_UNASSIGNED: (bool, False, True)}
#: the PACS connection (id) accepted targets go to automatically; pacs checks that the project may use it
_SETTINGS["pacs_auto_send_connection"] = (int, 1, 2**31 - 1)


class ProjectSerializer(StrictModelSerializer):
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "description", "modality", "labels", "settings", "created_at", "my_role"]
        read_only_fields = ["id", "created_at", "my_role"]

    def get_my_role(self, project) -> str | None:
        roles = self.context.get("roles")
        if roles is None:
            return None
        return roles.get(project.pk)

    def validate_name(self, name: str) -> str:
        """A name is unique among the caller's own projects, and only there: the projects of other
        teams never decide the answer, so it cannot be used to find out what they are called."""
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return name
        mine = Project.objects.filter(memberships__user=user, name__iexact=name.strip())
        if self.instance is not None:
            mine = mine.exclude(pk=self.instance.pk)
        if mine.exists():
            raise serializers.ValidationError("You already have a project with this name.")
        return name

    def validate_labels(self, labels):
        if not isinstance(labels, list) or not labels:
            raise serializers.ValidationError("labels must be a non-empty list of {name, color} objects.")
        names = set()
        for label in labels:
            if not isinstance(label, dict) or set(label) - {"name", "color"} or "name" not in label:
                raise serializers.ValidationError("each label is an object with 'name' and optional 'color'.")
            name = label["name"]
            if not isinstance(name, str) or not name.strip() or len(name) > 100:
                raise serializers.ValidationError("a label name is a non-empty string of at most 100 characters.")
            if name in names:
                raise serializers.ValidationError(f"label {name!r} appears twice.")
            names.add(name)
            color = label.get("color", "#ff4d4f")
            if not isinstance(color, str) or not _COLOR.match(color):
                raise serializers.ValidationError(f"label {name!r}: color must look like '#rrggbb'.")
        return labels

    def validate_settings(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("settings must be an object.")
        for key, item in value.items():
            if key not in _SETTINGS:
                raise serializers.ValidationError(f"unknown setting {key!r}.")
            kind, low, high = _SETTINGS[key]
            if kind is bool:
                if not isinstance(item, bool):
                    raise serializers.ValidationError(f"{key} must be true or false.")
                continue
            if not isinstance(item, kind) or isinstance(item, bool) or not low <= item <= high:
                raise serializers.ValidationError(f"{key} must be an integer from {low} to {high}.")
        return value


class MembershipSerializer(StrictModelSerializer):
    project = ScopedPrimaryKeyRelatedField(project_path="", queryset=Project.objects.all())
    user = serializers.PrimaryKeyRelatedField(queryset=get_user_model().objects.all(), required=False)
    username = serializers.SlugRelatedField(
        source="user", slug_field="username", queryset=get_user_model().objects.all(), required=False
    )
    role = serializers.ChoiceField(choices=Role.choices)
    create_only_fields = ("project", "user", "username")

    class Meta:
        model = Membership
        fields = ["id", "project", "user", "username", "role"]
        read_only_fields = ["id"]
        # `user` and `username` name the same column; a second membership is refused by the database (409).
        validators: list = []

    def validate(self, attrs):
        if self.instance is None and "user" not in attrs:
            raise serializers.ValidationError({"username": ["Give the user by 'username' or 'user' id."]})
        return attrs


class LoginSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False)


class MeMembershipSerializer(serializers.Serializer):
    project = serializers.IntegerField(source="project_id")
    project_name = serializers.CharField(source="project.name")
    role = serializers.CharField()


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_superuser = serializers.BooleanField()
    can_create_projects = serializers.BooleanField()
    memberships = MeMembershipSerializer(many=True)
