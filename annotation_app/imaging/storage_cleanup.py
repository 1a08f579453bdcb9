"""Removing a case's files from storage (its canonical array, derived files and, when no other case
shares it, the original upload)."""

from django.core.files.storage import default_storage

from annotation_app.imaging.models import Case
from annotation_app.imaging.storage import cache_path


def delete_case_files(case) -> None:
    for key in (case.image_key, (case.image_meta or {}).get("ground_truth_key")):
        if key and default_storage.exists(key):
            default_storage.delete(key)
        if key:
            cache_path(key).unlink(missing_ok=True)  # this machine's copy of a remote file
    original = case.original_key
    if original and not Case.objects.filter(original_key=original).exclude(pk=case.pk).exists():
        if default_storage.exists(original):
            default_storage.delete(original)
