"""Model versions for tests: a (fake) checkpoint stored under the project's models/ folder."""

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from annotation_app.rounds.models import ModelVersion, checkpoint_prefix


def stored_checkpoint(project, name: str, content: bytes = b"PK\x03\x04 not really weights") -> str:
    """Store `content` as models/<project>/<name>.pt and return its storage key."""
    return default_storage.save(f"{checkpoint_prefix(project.pk)}{name}.pt", ContentFile(content))


def make_version(project, name: str, **fields) -> ModelVersion:
    """A verified version (as if a worker had loaded it) whose checkpoint is in storage."""
    fields.setdefault("verified_at", timezone.now())
    return ModelVersion.objects.create(
        project=project, name=name, checkpoint_key=stored_checkpoint(project, name), **fields
    )
