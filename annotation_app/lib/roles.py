"""Roles inside a project. Each role includes the powers of the ones below it."""

from django.db import models


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Admin"


RANK = {Role.ANNOTATOR: 1, Role.REVIEWER: 2, Role.MANAGER: 3, Role.ADMIN: 4}


def role_at_least(role: str | None, needed: str) -> bool:
    return role is not None and RANK[Role(role)] >= RANK[Role(needed)]
