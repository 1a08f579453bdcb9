"""On the embedded SQLite default the database itself refuses UPDATE and DELETE of mask revisions and
interaction events, as Postgres does, and deleting an author in the admin keeps their authorship.

The suite runs on Postgres, so these run the product in a subprocess on a fresh SQLite database, as a
laptop with nothing configured would (see test_embedded_default.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PASSTHROUGH = ("PATH", "HOME", "LANG", "VIRTUAL_ENV", "TMPDIR")

CHECKS = r"""
import json, os, uuid
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_app.settings")
django.setup()
import numpy as np
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone
from annotation_app.annotations.models import InteractionEvent, MaskRevision, Target
from annotation_app.imaging.models import Case
from annotation_app.projects.models import Project

User = get_user_model()
author = User.objects.create_user(username="drawer", password="drawer-pw-123")
project = Project.objects.create(name="p", modality="CT")
case = Case.objects.create(project=project, name="c", modality="CT", shape=[1, 2, 2], status="ready")
target = Target.objects.create(case=case, label="lesion")
revision = MaskRevision.append(target, np.ones((1, 2, 2), dtype=bool), "human", author=author)
InteractionEvent.objects.create(
    project=project, case=case, target=target, user=author, kind="focus",
    client_event_id=uuid.uuid4(), client_ts=timezone.now(),
)
statements = {
    "update a revision": "UPDATE annotations_maskrevision SET note = 'tampered'",
    "null a revision's author": "UPDATE annotations_maskrevision SET author_id = NULL",
    "delete revisions": "DELETE FROM annotations_maskrevision",
    "update an event": "UPDATE annotations_interactionevent SET kind = 'custom'",
    "delete events": "DELETE FROM annotations_interactionevent",
}
refused = {}
for what, sql in statements.items():
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
        refused[what] = "accepted"
    except IntegrityError as exc:
        refused[what] = "refused" if "append-only" in str(exc) else str(exc)
try:
    with transaction.atomic():
        MaskRevision.objects.update(note="bulk")
    refused["bulk update"] = "accepted"
except IntegrityError:
    refused["bulk update"] = "refused"

root = User.objects.create_superuser(username="root", password="root-pw-123")
client = Client()
client.force_login(root)
page = client.post(f"/admin/auth/user/{author.pk}/delete/", {"post": "yes"})
print("RESULT " + json.dumps({
    "vendor": connection.vendor,
    "refused": refused,
    "admin_status": page.status_code,
    "admin_explains": "Deactivate the account instead" in page.content.decode(),
    "user_kept": User.objects.filter(pk=author.pk).exists(),
    "author_kept": MaskRevision.objects.get(pk=revision.pk).author_id == author.pk,
    "revisions": MaskRevision.objects.count(),
    "notes": sorted(set(MaskRevision.objects.values_list("note", flat=True))),
}))
"""

REBUILD = r"""
import os
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_app.settings")
django.setup()
from django.core.management import call_command
from django.db import connection
from annotation_app.annotations.triggers import drop_sqlite_triggers

def triggers():
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%append_only%'")
        return sorted(row[0] for row in cursor.fetchall())

before = triggers()
drop_sqlite_triggers(connection)  # what a table rebuild by a later migration does to them
dropped = triggers()
call_command("migrate", verbosity=0)
print("RESULT", len(before), len(dropped), len(triggers()))
"""


@pytest.fixture(scope="module")
def sqlite_env(tmp_path_factory):
    var = tmp_path_factory.mktemp("sqlite-append-only") / "var"
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    env.update(ANNOTATION_VAR_DIR=str(var), PYTHONUNBUFFERED="1")
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    return env


def _run(env, script: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return next(line for line in result.stdout.splitlines() if line.startswith("RESULT")).split(" ", 1)[1]


@pytest.mark.slow
def test_on_sqlite_the_database_refuses_changes_and_the_admin_keeps_authors(sqlite_env):
    result = json.loads(_run(sqlite_env, CHECKS))
    assert result["vendor"] == "sqlite"
    assert result["refused"] == {
        "update a revision": "refused",
        "null a revision's author": "refused",
        "delete revisions": "refused",
        "update an event": "refused",
        "delete events": "refused",
        "bulk update": "refused",
    }
    assert result["admin_status"] == 200 and result["admin_explains"]
    assert result["user_kept"] and result["author_kept"]
    assert result["revisions"] == 1 and result["notes"] == [""]


@pytest.mark.slow
def test_on_sqlite_every_migrate_puts_the_triggers_back(sqlite_env):
    assert _run(sqlite_env, REBUILD).split() == ["4", "0", "4"]
