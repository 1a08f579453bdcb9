"""Projects and who may do what in them."""
from django.conf import settings as django_settings
from django.db import models

from annotation_app.lib.roles import Role

DEFAULT_PROJECT_SETTINGS = {"idle_threshold_s": 30}
#: project setting: may annotators edit targets that are not assigned to them? (default: no)
EDIT_UNASSIGNED = "annotators_edit_unassigned"


def can_create_projects(user) -> bool:
    """Who may start a project: settings.PROJECT_CREATORS is "staff" (the default: staff users and
    users a staff member granted the `projects.add_project` permission) or "anyone" (signed in)."""
    if not (user and user.is_authenticated):
        return False
    if getattr(django_settings, "PROJECT_CREATORS", "staff") == "anyone":
        return True
    return bool(user.is_staff or user.is_superuser or user.has_perm("projects.add_project"))


class Modality(models.TextChoices):
    CT = "CT", "CT"
    MR = "MR", "MRI"
    PT = "PT", "PET"
    US = "US", "Ultrasound"
    ES = "ES", "Endoscopy"


def default_settings() -> dict:
    return dict(DEFAULT_PROJECT_SETTINGS)


def default_labels() -> list:
    return [{"name": "lesion", "color": "#ff4d4f"}]


class Project(models.Model):
    #: unique among the projects of each member (checked by the API), not across the whole server: a
    #: global rule would tell anyone who tries a name that another team already uses it
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    modality = models.CharField(max_length=2, choices=Modality.choices)
    #: [{"name": "lesion", "color": "#ff0000"}, ...]
    labels = models.JSONField(default=default_labels)
    #: e.g. {"idle_threshold_s": 30} — gaps longer than this are not counted as active time.
    settings = models.JSONField(default=default_settings)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def label_names(self) -> list[str]:
        return [label["name"] for label in self.labels]

    @property
    def idle_threshold_s(self) -> int:
        return int(self.settings.get("idle_threshold_s", DEFAULT_PROJECT_SETTINGS["idle_threshold_s"]))

    @property
    def annotators_edit_unassigned(self) -> bool:
        return bool(self.settings.get(EDIT_UNASSIGNED, False))

    def add_member(self, user, role: str) -> "Membership":
        membership, _ = Membership.objects.update_or_create(project=self, user=user, defaults={"role": role})
        return membership

    def role_of(self, user) -> str | None:
        return Membership.objects.filter(project=self, user=user).values_list("role", flat=True).first()


class Membership(models.Model):
    user = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "user_id"]
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"
