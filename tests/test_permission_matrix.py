"""One permission matrix over every API endpoint and every kind of caller.

Each `Row` is one request (method, path, body) and the least role that may make it. For each row the
test runs the request as anonymous, an outsider (admin of another project only), and an annotator,
reviewer, manager and admin of the project that owns the objects, and checks:
- anonymous: 401 or 403, never data;
- outsider: 404 on the project's objects (400 where a body names them: they "do not exist" for him);
  lists answer 200 without any of the project's objects;
- members below the least role: 403 (or `denied` where the endpoint hides the object instead);
- members at or above it: the row's success status.

To add endpoints (imaging, propagation, ...): build what they need in `World` (or `World.extras`) and
append `Row`s to `ROWS`. Paths and bodies are formatted from the world: "{w.case.pk}" etc.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from annotation_app.annotations.models import (
    InteractionEvent,
    MaskRevision,
    Prompt,
    SliceComment,
    Target,
    TargetStatus,
)
from annotation_app.imaging.models import Case, CaseStatus
from annotation_app.lib.roles import Role
from annotation_app.projects.models import Membership, Project
from annotation_app.rounds.models import ModelVersion, Round, RoundStatus, TrainingRun

ANYONE = "anyone signed in"
CALLERS = ["anonymous", "outsider", Role.ANNOTATOR, Role.REVIEWER, Role.MANAGER, Role.ADMIN]
RANK = {Role.ANNOTATOR: 1, Role.REVIEWER: 2, Role.MANAGER: 3, Role.ADMIN: 4}


@dataclass
class World:
    """The objects of one project (plus a spare project with the same members) that rows act on."""

    project: Project
    spare_project: Project
    users: dict
    case: Case
    old_round: Round
    open_round: Round
    target: Target
    bare_target: Target
    submitted_target: Target
    revision: MaskRevision
    prompt: Prompt
    withdrawn_prompt: Prompt
    model_version: ModelVersion
    training_run: TrainingRun
    event: InteractionEvent
    member: Membership
    extras: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: str
    least: str  # a Role, or ANYONE
    ok: int = 200
    body: Callable[[World], object] | None = None
    #: status for members below `least` (403 unless the endpoint hides the object)
    denied: int = 403
    #: status for the outsider; None: 404 for object paths, 400 for bodies that name the objects
    outsider: int | None = None
    #: for list rows: the world's ids that members may see and the outsider must not
    own_ids: Callable[[World], set] | None = None
    #: extra request headers, e.g. {"HTTP_ACCEPT": "application/json"} where a view has several renderers
    headers: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


def _mask(case: Case, frames: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(case.shape, dtype=bool)
    for frame in frames:
        mask[frame, 2:5, 2:6] = True
    return mask


@pytest.fixture
def world(project, other_project, owner, manager, reviewer, annotator, outsider, settings, tmp_path) -> World:
    users = {
        Role.ADMIN: owner,
        Role.MANAGER: manager,
        Role.REVIEWER: reviewer,
        Role.ANNOTATOR: annotator,
        "outsider": outsider,
    }
    spare = Project.objects.create(name="Spare project", modality="CT")
    for role in RANK:
        spare.add_member(users[role], role)
    helper = get_user_model().objects.create_user(username="helper", password="helper-pw-123")
    get_user_model().objects.create_user(username="newbie", password="newbie-pw-123")
    case = Case.objects.create(
        project=project,
        name="case 1",
        modality="CT",
        shape=[4, 8, 8],
        spacing=[2.0, 1.0, 1.0],
        status=CaseStatus.READY,
    )
    # the imaging rows (slices, thumbnail, export) need a stored image; keep it in this test's folder
    from annotation_app.imaging.storage import save_case_array

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.IMPORT_DIR = str(tmp_path)
    case.image_key = save_case_array(case, np.zeros(case.shape, dtype=np.int16))
    case.save(update_fields=["image_key"])
    old_round = Round.objects.create(project=project, number=1, status=RoundStatus.CLOSED, closed_at=timezone.now())
    open_round = Round.objects.create(project=project, number=2)
    target = Target.objects.create(case=case, label="lesion", round=open_round, created_by=annotator, key_frame=1)
    revision = MaskRevision.append(target, _mask(case, (1, 2)), "human", author=annotator)
    submitted = Target.objects.create(case=case, label="lesion", round=open_round, created_by=annotator)
    MaskRevision.append(submitted, _mask(case, (0,)), "human", author=annotator)
    submitted.submit()
    bare = Target.objects.create(case=case, label="lesion", round=open_round, created_by=annotator)
    prompt = Prompt.objects.create(target=target, frame=1, kind="box", payload={"box": [2, 2, 6, 5]}, author=annotator)
    withdrawn = Prompt.objects.create(
        target=target,
        frame=2,
        kind="point",
        payload={"points": [[3, 3]], "labels": [1]},
        author=annotator,
        withdrawn=True,
    )
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    for name in ("v1", "v2"):  # checkpoints are storage keys of the project (v2: registered by a row)
        default_storage.save(f"models/{project.pk}/{name}.pt", ContentFile(b"PK\x03\x04"))
    model_version = ModelVersion.objects.create(
        project=project, name="v1", checkpoint_key=f"models/{project.pk}/v1.pt", verified_at=timezone.now()
    )
    run = TrainingRun.objects.create(project=project)  # no round/base model: those rows delete them
    event = InteractionEvent.objects.create(
        project=project,
        case=case,
        target=target,
        user=owner,
        kind="focus",
        client_event_id=uuid.uuid4(),
        client_ts=timezone.now(),
    )
    member = project.add_member(helper, Role.ANNOTATOR)
    from annotation_app.propagation.models import PropagationJob

    job = PropagationJob.objects.create(target=target, idempotency_key=f"matrix-{uuid.uuid4().hex}")
    world = World(
        project,
        spare,
        users,
        case,
        old_round,
        open_round,
        target,
        bare,
        submitted,
        revision,
        prompt,
        withdrawn,
        model_version,
        run,
        event,
        member,
    )
    world.extras["job"] = job
    from annotation_app.exports.models import ExportJob

    world.extras["export"] = ExportJob.objects.create(
        project=project, case=case, format="nifti", status="succeeded", filename="case.nii.gz",
        result_key=default_storage.save("exports/matrix/case.nii.gz", ContentFile(b"\x1f\x8b-not-really")),
    )  # fmt: skip
    world.extras["comment"] = SliceComment.objects.create(
        target=submitted, author=reviewer, frame=0, x=2.0, y=3.0, text="check the rim"
    )
    world.extras.update(_pacs_objects(project, annotator, reviewer))
    world.extras.update(_learning_loop_objects(world))
    return world


def _learning_loop_objects(w: World) -> dict:
    """The closed round's frozen snapshot, a held-out case and a case to mark, a version that was active
    before (for a rollback) and the activation log."""
    from annotation_app.rounds.models import HeldOutCase

    Round.objects.filter(pk=w.old_round.pk).update(snapshot={"train": [w.revision.pk], "held_out": []},
                                                  snapshot_hash="0" * 64)  # fmt: skip
    w.old_round.refresh_from_db()
    spare = Case.objects.create(project=w.project, name="case 3", modality="CT", shape=[4, 8, 8], status="ready")
    held = Case.objects.create(project=w.project, name="case 4", modality="CT", shape=[4, 8, 8], status="ready")
    earlier = ModelVersion.objects.create(
        project=w.project, name="v0", checkpoint_key=w.model_version.checkpoint_key, verified_at=timezone.now()
    )
    current = ModelVersion.objects.create(
        project=w.project, name="v0.1", checkpoint_key=w.model_version.checkpoint_key, verified_at=timezone.now()
    )
    earlier.activate(by=w.users[Role.ADMIN], reason="the first model")
    current.activate(by=w.users[Role.ADMIN], reason="better")
    return {
        "held_out": HeldOutCase.objects.create(project=w.project, case=held),
        "unmarked_case": spare,
        "earlier_version": earlier,
        "activation": earlier.activations.get(),
    }


def _pacs_objects(project, annotator, reviewer) -> dict:
    """A PACS connection of the project (at a closed port: searches reach it and fail, 502), an import,
    two accepted targets, and a failed SEG send of the first."""
    from annotation_app.pacs.models import DicomWebConnection, PacsImport, SegSend

    closed = "http://127.0.0.1:9/dicom-web"
    connection = DicomWebConnection.objects.create(
        name="PACS", project=project, qido_url=closed, wado_url=closed, stow_url=closed, password="secret"
    )
    job = PacsImport.objects.create(project=project, connection=connection, study_uid="1.2.3", series_uid="1.2.3.1")
    case = Case.objects.create(project=project, name="case 2", modality="CT", shape=[4, 8, 8], status=CaseStatus.READY)
    accepted = []
    for _ in range(2):
        target = Target.objects.create(case=case, label="lesion", created_by=annotator)
        MaskRevision.append(target, _mask(case, (1,)), "human", author=annotator)
        target.submit()
        target.accept(reviewer)
        accepted.append(target)
    failed = SegSend.objects.create(
        target=accepted[0], revision=accepted[0].current_revision, connection=connection, status="failed",
        error="PACS down", sop_instance_uid="1.2.3.9", series_instance_uid="1.2.3.8",
    )  # fmt: skip
    return {"pacs_connection": connection, "pacs_import": job, "unsent_target": accepted[1], "seg_send": failed}


def _event(w: World) -> list:
    return [
        {
            "client_event_id": str(uuid.uuid4()),
            "kind": "focus",
            "client_ts": timezone.now().isoformat(),
            "target": w.target.pk,
            "payload": {},
        }
    ]


ROWS: list[Row] = [
    # --- projects
    Row("list projects", "get", "/api/projects/", Role.ANNOTATOR, own_ids=lambda w: {w.project.pk}),
    Row("read a project", "get", "/api/projects/{w.project.pk}/", Role.ANNOTATOR),
    # Project creation is not a project role: staff and users a staff member allowed (none of the
    # matrix's callers); tests/test_assignment_policy.py covers those who may.
    Row(
        "create a project",
        "post",
        "/api/projects/",
        ANYONE,
        ok=403,
        outsider=403,
        body=lambda w: {"name": "Brand new", "modality": "MR"},
    ),
    Row(
        "edit a project",
        "patch",
        "/api/projects/{w.project.pk}/",
        Role.MANAGER,
        body=lambda w: {"description": "edited"},
    ),
    Row("delete a project", "delete", "/api/projects/{w.spare_project.pk}/", Role.MANAGER, ok=204),
    # --- memberships
    Row(
        "list memberships",
        "get",
        "/api/memberships/?project={w.project.pk}",
        Role.ANNOTATOR,
        own_ids=lambda w: {w.member.pk},
    ),
    Row("read a membership", "get", "/api/memberships/{w.member.pk}/", Role.ANNOTATOR),
    Row(
        "add a member",
        "post",
        "/api/memberships/",
        Role.MANAGER,
        ok=201,
        body=lambda w: {"project": w.project.pk, "username": "newbie", "role": "annotator"},
    ),
    Row(
        "change a member's role",
        "patch",
        "/api/memberships/{w.member.pk}/",
        Role.MANAGER,
        body=lambda w: {"role": "reviewer"},
    ),
    Row("remove a member", "delete", "/api/memberships/{w.member.pk}/", Role.MANAGER, ok=204),
    # --- rounds
    Row(
        "list rounds",
        "get",
        "/api/rounds/",
        Role.ANNOTATOR,
        own_ids=lambda w: {w.old_round.pk, w.open_round.pk},
    ),
    Row("read a round", "get", "/api/rounds/{w.open_round.pk}/", Role.ANNOTATOR),
    Row(
        "open a round",
        "post",
        "/api/rounds/",
        Role.MANAGER,
        ok=201,
        body=lambda w: {"project": w.spare_project.pk, "is_manual_baseline": True},
    ),
    Row(
        "edit a round",
        "patch",
        "/api/rounds/{w.open_round.pk}/",
        Role.MANAGER,
        body=lambda w: {"is_manual_baseline": True},
    ),
    Row("close a round", "post", "/api/rounds/{w.open_round.pk}/close/", Role.MANAGER),
    Row("delete a round", "delete", "/api/rounds/{w.old_round.pk}/", Role.MANAGER, ok=204),
    # --- model versions
    Row(
        "list model versions",
        "get",
        "/api/model-versions/",
        Role.ANNOTATOR,
        own_ids=lambda w: {w.model_version.pk},
    ),
    Row("read a model version", "get", "/api/model-versions/{w.model_version.pk}/", Role.ANNOTATOR),
    Row(
        "register a model version",
        "post",
        "/api/model-versions/",
        Role.ADMIN,
        ok=201,
        body=lambda w: {"project": w.project.pk, "name": "v2", "checkpoint_key": f"models/{w.project.pk}/v2.pt"},
    ),
    # JSON without a file: the role check passes first, then the missing file is a 400
    Row(
        "upload a model checkpoint (no file)",
        "post",
        "/api/model-versions/upload/",
        Role.ADMIN,
        ok=400,
        body=lambda w: {"project": w.project.pk, "name": "v3"},
    ),
    Row(
        "edit a model version",
        "patch",
        "/api/model-versions/{w.model_version.pk}/",
        Role.ADMIN,
        body=lambda w: {"name": "v1 (bootstrap)"},
    ),
    Row("activate a model version", "post", "/api/model-versions/{w.model_version.pk}/activate/", Role.ADMIN),
    Row(
        "promote a model version",
        "post",
        "/api/model-versions/{w.model_version.pk}/promote/",
        Role.ADMIN,
        body=lambda w: {"reason": "the admin's call"},
    ),
    Row(
        "roll back to an earlier model version",
        "post",
        "/api/model-versions/{w.extras[earlier_version].pk}/rollback/",
        Role.ADMIN,
        body=lambda w: {"reason": "the new one misses lesions"},
    ),
    Row("delete a model version", "delete", "/api/model-versions/{w.model_version.pk}/", Role.ADMIN, ok=204),
    # --- training runs
    Row(
        "list training runs",
        "get",
        "/api/training-runs/",
        Role.ANNOTATOR,
        own_ids=lambda w: {w.training_run.pk},
    ),
    Row("read a training run", "get", "/api/training-runs/{w.training_run.pk}/", Role.ANNOTATOR),
    Row(
        "start a training run",
        "post",
        "/api/training-runs/",
        Role.ADMIN,
        ok=201,
        body=lambda w: {"project": w.project.pk, "round": w.old_round.pk, "hyperparameters": {"steps": 10}},
    ),
    Row("cancel a training run", "post", "/api/training-runs/{w.training_run.pk}/cancel/", Role.ADMIN),
    Row(
        "train a round",
        "post",
        "/api/rounds/{w.old_round.pk}/train/",
        Role.ADMIN,
        ok=201,
        body=lambda w: {"hyperparameters": {"steps": 10}},
    ),
    # --- held-out cases and the activation log
    Row(
        "list held-out cases",
        "get",
        "/api/held-out-cases/",
        Role.ANNOTATOR,
        own_ids=lambda w: {w.extras["held_out"].pk},
    ),
    Row("read a held-out case", "get", "/api/held-out-cases/{w.extras[held_out].pk}/", Role.ANNOTATOR),
    Row(
        "hold a case out",
        "post",
        "/api/held-out-cases/",
        Role.MANAGER,
        ok=201,
        body=lambda w: {"case": w.extras["unmarked_case"].pk},
    ),
    Row("stop holding a case out", "delete", "/api/held-out-cases/{w.extras[held_out].pk}/", Role.MANAGER, ok=204),
    Row(
        "list model activations",
        "get",
        "/api/model-activations/",
        Role.ANNOTATOR,
        own_ids=lambda w: {w.extras["activation"].pk},
    ),
    Row("read a model activation", "get", "/api/model-activations/{w.extras[activation].pk}/", Role.ANNOTATOR),
    # --- targets
    Row(
        "list targets",
        "get",
        "/api/targets/?case={w.case.pk}",
        Role.ANNOTATOR,
        own_ids=lambda w: {w.target.pk, w.bare_target.pk, w.submitted_target.pk},
    ),
    Row("read a target", "get", "/api/targets/{w.target.pk}/", Role.ANNOTATOR),
    Row(
        "create a target",
        "post",
        "/api/targets/",
        Role.ANNOTATOR,
        ok=201,
        body=lambda w: {"case": w.case.pk, "label": "lesion", "key_frame": 2},
    ),
    Row(
        "edit a target",
        "patch",
        "/api/targets/{w.target.pk}/",
        Role.ANNOTATOR,
        body=lambda w: {"key_frame": 3},
    ),
    Row("delete a target", "delete", "/api/targets/{w.bare_target.pk}/", Role.MANAGER, ok=204),
    Row("submit a target", "post", "/api/targets/{w.target.pk}/submit/", Role.ANNOTATOR),
    Row(
        "accept a target",
        "post",
        "/api/targets/{w.submitted_target.pk}/accept/",
        Role.REVIEWER,
        body=lambda w: {"comment": "fine"},
    ),
    Row(
        "reject a target",
        "post",
        "/api/targets/{w.submitted_target.pk}/reject/",
        Role.REVIEWER,
        body=lambda w: {"comment": "missed the rim"},
    ),
    # --- prompts
    Row(
        "list prompts",
        "get",
        "/api/prompts/?target={w.target.pk}",
        Role.ANNOTATOR,
        own_ids=lambda w: {w.prompt.pk, w.withdrawn_prompt.pk},
    ),
    Row("read a prompt", "get", "/api/prompts/{w.prompt.pk}/", Role.ANNOTATOR),
    Row(
        "place a prompt",
        "post",
        "/api/prompts/",
        Role.ANNOTATOR,
        ok=201,
        body=lambda w: {"target": w.target.pk, "frame": 0, "kind": "box", "payload": {"box": [1, 1, 5, 6]}},
    ),
    Row("withdraw a prompt", "post", "/api/prompts/{w.prompt.pk}/withdraw/", Role.ANNOTATOR),
    Row("restore a prompt", "post", "/api/prompts/{w.withdrawn_prompt.pk}/restore/", Role.ANNOTATOR),
    # --- mask revisions
    Row(
        "list mask revisions",
        "get",
        "/api/mask-revisions/?target={w.target.pk}",
        Role.ANNOTATOR,
        own_ids=lambda w: {w.revision.pk},
    ),
    Row("read a mask revision", "get", "/api/mask-revisions/{w.revision.pk}/", Role.ANNOTATOR),
    Row("read a mask revision's frames", "get", "/api/mask-revisions/{w.revision.pk}/frames/", Role.ANNOTATOR),
    Row(
        "save an edited mask",
        "post",
        "/api/mask-revisions/",
        Role.ANNOTATOR,
        ok=201,
        body=lambda w: {"target": w.target.pk, "slices": {"0": {"rle": [9, 3, 52]}}},
    ),
    # --- review: a reviewer's fix of a submitted target, and comments pinned to a slice
    Row(
        "save a reviewer's fix",
        "post",
        "/api/mask-revisions/",
        Role.REVIEWER,
        ok=201,
        body=lambda w: {"target": w.submitted_target.pk, "source": "review", "slices": {"0": {"rle": [9, 3, 52]}}},
    ),
    Row(
        "list slice comments",
        "get",
        "/api/slice-comments/?target={w.submitted_target.pk}",
        Role.ANNOTATOR,
        own_ids=lambda w: {w.extras["comment"].pk},
    ),
    Row("read a slice comment", "get", "/api/slice-comments/{w.extras[comment].pk}/", Role.ANNOTATOR),
    Row(
        "pin a comment to a slice",
        "post",
        "/api/slice-comments/",
        Role.REVIEWER,
        ok=201,
        body=lambda w: {"target": w.submitted_target.pk, "frame": 0, "x": 3.5, "y": 2.0, "text": "rim missed"},
    ),
    # --- export jobs (managers only: other members do not see them)
    Row(
        "list export jobs",
        "get",
        "/api/export-jobs/?project={w.project.pk}",
        Role.MANAGER,
        own_ids=lambda w: {w.extras["export"].pk},
    ),
    Row("read an export job", "get", "/api/export-jobs/{w.extras[export].pk}/", Role.MANAGER, denied=404),
    Row(
        "start an export job",
        "post",
        "/api/export-jobs/",
        Role.MANAGER,
        ok=202,
        body=lambda w: {"project": w.project.pk, "format": "project-zip"},
    ),
    Row(
        "download an export",
        "get",
        "/api/export-jobs/{w.extras[export].pk}/download/",
        Role.MANAGER,
        denied=404,
    ),
    # --- interaction events (annotators and reviewers see only their own; this one is the admin's)
    Row("list events", "get", "/api/events/", Role.MANAGER, own_ids=lambda w: {w.event.pk}),
    Row("read an event", "get", "/api/events/{w.event.pk}/", Role.MANAGER, denied=404),
    Row("send events", "post", "/api/events/", Role.ANNOTATOR, ok=201, body=_event),
    # --- time per target and the round report (reviewers read timings, managers export and report)
    Row(
        "list target timings",
        "get",
        "/api/target-timings/?project={w.project.pk}",
        Role.REVIEWER,
        own_ids=lambda w: {w.target.pk, w.bare_target.pk, w.submitted_target.pk},
    ),
    Row("read a target's timing", "get", "/api/target-timings/{w.target.pk}/", Role.REVIEWER, denied=404),
    Row("export target timings", "get", "/api/target-timings/export/?project={w.project.pk}", Role.MANAGER),
    Row("read the timing report", "get", "/api/timing-report/?project={w.project.pk}", Role.MANAGER),
    # --- cases and imaging (helper E)
    Row("list cases", "get", "/api/cases/", Role.ANNOTATOR, own_ids=lambda w: {w.case.pk}),
    Row("read a case", "get", "/api/cases/{w.case.pk}/", Role.ANNOTATOR),
    Row("rename a case", "patch", "/api/cases/{w.case.pk}/", Role.MANAGER, body=lambda w: {"name": "renamed"}),
    # JSON without a file: the role check passes first, then the missing file is a 400
    Row(
        "upload images (no file)",
        "post",
        "/api/cases/upload/",
        Role.MANAGER,
        ok=400,
        body=lambda w: {"project": w.project.pk},
        outsider=404,
    ),
    Row("read a slice", "get", "/api/cases/{w.case.pk}/slice/?axis=axial&index=1&format=png", Role.ANNOTATOR),
    Row(
        "read raw slice",
        "get",
        "/api/cases/{w.case.pk}/slice/?axis=coronal&index=1&format=raw",
        Role.ANNOTATOR,
    ),
    Row("read a thumbnail", "get", "/api/cases/{w.case.pk}/thumbnail/", Role.ANNOTATOR),
    Row("export a case (nifti)", "get", "/api/cases/{w.case.pk}/export/?format=nifti", Role.ANNOTATOR),
    Row("export a case (coco)", "get", "/api/cases/{w.case.pk}/export/?format=coco", Role.ANNOTATOR),
    Row(
        "import masks (no file)",
        "post",
        "/api/cases/{w.case.pk}/import-masks/",
        Role.ANNOTATOR,
        ok=400,
        body=lambda w: {},
    ),
    Row("export a project", "get", "/api/projects/{w.project.pk}/export/", Role.ANNOTATOR),
    Row(
        "assign cases",
        "post",
        "/api/cases/assign/",
        Role.MANAGER,
        body=lambda w: {"project": w.project.pk, "cases": [w.case.pk], "reviewer": w.users[Role.REVIEWER].pk},
    ),
    Row("list the import folder", "get", "/api/cases/import-folder/?project={w.project.pk}", Role.MANAGER),
    Row(
        "import a missing folder entry",
        "post",
        "/api/cases/import-folder/",
        Role.MANAGER,
        ok=400,
        body=lambda w: {"project": w.project.pk, "entries": ["no-such-entry"]},
        outsider=404,
    ),
    # --- propagation jobs (helper F); the world's job is queued, so it can be cancelled.
    # The SSE stream is asked for JSON so that its refusals can be read (EventSource never shows them).
    Row(
        "start a propagation",
        "post",
        "/api/targets/{w.target.pk}/propagate/",
        Role.ANNOTATOR,
        ok=202,
        body=lambda w: {"direction": "both"},
    ),
    Row(
        "list propagation jobs",
        "get",
        "/api/propagation-jobs/",
        Role.ANNOTATOR,
        own_ids=lambda w: {w.extras["job"].pk},
    ),
    Row("read a propagation job", "get", "/api/propagation-jobs/{w.extras[job].pk}/", Role.ANNOTATOR),
    Row("cancel a propagation job", "post", "/api/propagation-jobs/{w.extras[job].pk}/cancel/", Role.ANNOTATOR),
    Row(
        "read a job's partial frames",
        "get",
        "/api/propagation-jobs/{w.extras[job].pk}/frames/",
        Role.ANNOTATOR,
    ),
    Row(
        "follow a job's events",
        "get",
        "/api/propagation-jobs/{w.extras[job].pk}/events/",
        Role.ANNOTATOR,
        headers={"HTTP_ACCEPT": "application/json"},
    ),
    # any member of any project may see the worker pool
    Row("see the workers", "get", "/api/workers/", ANYONE, outsider=200),
    Row("read the named CT windows", "get", "/api/windows/", ANYONE, outsider=200),
    # --- PACS: only a site admin (superuser) writes connections, so every project role is refused
    Row(
        "list PACS connections", "get", "/api/pacs/connections/", Role.ANNOTATOR,
        own_ids=lambda w: {w.extras["pacs_connection"].pk},
    ),  # fmt: skip
    Row("read a PACS connection", "get", "/api/pacs/connections/{w.extras[pacs_connection].pk}/", Role.ANNOTATOR),
    Row(
        "add a PACS connection (site admins only)", "post", "/api/pacs/connections/", Role.ANNOTATOR, ok=403,
        outsider=403, body=lambda w: {"name": "x", "qido_url": "http://pacs.example/q", "wado_url": "http://pacs.example/w"},
    ),  # fmt: skip
    Row(
        "edit a PACS connection (site admins only)", "patch", "/api/pacs/connections/{w.extras[pacs_connection].pk}/",
        Role.ANNOTATOR, ok=403, outsider=403, body=lambda w: {"qido_url": "http://elsewhere.example/q"},
    ),  # fmt: skip
    Row(
        "delete a PACS connection (site admins only)", "delete",
        "/api/pacs/connections/{w.extras[pacs_connection].pk}/", Role.ANNOTATOR, ok=403, outsider=403,
    ),  # fmt: skip
    Row(
        "search a PACS for studies", "get",
        "/api/pacs/connections/{w.extras[pacs_connection].pk}/studies/?project={w.project.pk}&patient_id=X",
        Role.MANAGER, ok=502,
    ),  # fmt: skip
    Row(
        "search a PACS study for series", "get",
        "/api/pacs/connections/{w.extras[pacs_connection].pk}/series/?project={w.project.pk}&study_uid=1.2.3",
        Role.MANAGER, ok=502,
    ),  # fmt: skip
    Row(
        "list PACS imports", "get", "/api/pacs/imports/", Role.ANNOTATOR, own_ids=lambda w: {w.extras["pacs_import"].pk}
    ),  # fmt: skip
    Row("read a PACS import", "get", "/api/pacs/imports/{w.extras[pacs_import].pk}/", Role.ANNOTATOR),
    Row(
        "import a series from a PACS", "post", "/api/pacs/imports/", Role.MANAGER, ok=201,
        body=lambda w: {
            "project": w.project.pk, "connection": w.extras["pacs_connection"].pk,
            "study_uid": "1.2.3", "series_uid": "1.2.3.2",
        },
    ),  # fmt: skip
    Row("list SEG sends", "get", "/api/pacs/sends/", Role.ANNOTATOR, own_ids=lambda w: {w.extras["seg_send"].pk}),
    Row("read a SEG send", "get", "/api/pacs/sends/{w.extras[seg_send].pk}/", Role.ANNOTATOR),
    Row(
        "send an accepted target to a PACS", "post", "/api/pacs/sends/", Role.REVIEWER, ok=201,
        body=lambda w: {"target": w.extras["unsent_target"].pk, "connection": w.extras["pacs_connection"].pk},
    ),  # fmt: skip
    Row("retry a failed SEG send", "post", "/api/pacs/sends/{w.extras[seg_send].pk}/retry/", Role.REVIEWER, ok=202),
]


def _ids(payload) -> set:
    results = payload["results"] if isinstance(payload, dict) and "results" in payload else payload
    return {item["id"] for item in results}


def _expected(row: Row, caller: str) -> int:
    if caller == "outsider":
        if row.outsider is not None:
            return row.outsider
        return 400 if row.body is not None and row.method == "post" and "{w." not in row.path else 404
    if row.least == ANYONE or RANK[caller] >= RANK[row.least]:
        return row.ok
    return row.denied


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("row", ROWS, ids=str)
def test_each_endpoint_answers_each_caller_as_the_matrix_says(row, caller, world, client_for):
    path = row.path.format(w=world)
    body = row.body(world) if row.body else None
    user = None if caller == "anonymous" else world.users[caller]
    response = getattr(client_for(user), row.method)(path, body, format="json", **row.headers)
    if caller == "anonymous":
        assert response.status_code in (401, 403), response.content
        assert "results" not in response.json()
        return
    if row.own_ids is not None:
        assert response.status_code == 200, response.content
        seen = _ids(response.json())
        if caller == "outsider":
            assert not seen & row.own_ids(world)
        elif RANK[caller] >= RANK[row.least]:
            assert row.own_ids(world) <= seen
        else:
            assert not seen & row.own_ids(world)
        return
    expected = _expected(row, caller)
    assert response.status_code == expected, (caller, response.status_code, response.content[:300])
    if expected >= 400:
        assert "detail" in response.json()


#: routes tested on their own (sign-in, schema, docs) rather than in the matrix
OUTSIDE_THE_MATRIX = {"api-root", "schema", "swagger-ui", "api-token", "api-login", "api-logout", "api-me"}


def test_the_matrix_covers_every_api_route():
    """A new endpoint must come with rows: every named route under /api/ is hit by at least one row."""
    import re

    from django.urls import get_resolver, resolve

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^")
            if hasattr(pattern, "url_patterns"):
                yield from walk(pattern.url_patterns, route)
            elif route.startswith("api/") and pattern.name:
                yield pattern.name

    api_names = set(walk(get_resolver().url_patterns))
    covered = {resolve(re.sub(r"\{w\.[^}]+\}", "1", row.path).split("?")[0]).url_name for row in ROWS}
    missing = sorted(api_names - covered - OUTSIDE_THE_MATRIX)
    assert missing == [], f"add matrix rows for: {missing}"


@pytest.mark.django_db
def test_a_superuser_reads_and_acts_in_every_project(world, client_for):
    root = get_user_model().objects.create_superuser(username="root", password="root-pw-123")
    client = client_for(root)
    assert client.get(f"/api/targets/{world.target.pk}/").status_code == 200
    assert client.post(f"/api/targets/{world.submitted_target.pk}/accept/", {}, format="json").status_code == 200
    names = {p["name"] for p in client.get("/api/projects/").json()["results"]}
    assert {"Liver lesions", "Other project", "Spare project"} <= names


def test_the_accepted_target_really_changed_state(world, client_for):
    """The matrix's success rows act for real: a reviewer's accept moves the target on."""
    client_for(world.users[Role.REVIEWER]).post(
        f"/api/targets/{world.submitted_target.pk}/accept/", {"comment": "ok"}, format="json"
    )
    world.submitted_target.refresh_from_db()
    assert world.submitted_target.status == TargetStatus.ACCEPTED
    assert world.submitted_target.review_comment == "ok"
