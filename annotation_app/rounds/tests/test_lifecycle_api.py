"""The round lifecycle without a worker: the pin, the manual baseline, the training snapshot, held-out
cases, starting and re-sending training runs, promote and roll back. (With real workers:
tests/test_training_worker.py.)"""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from annotation_app.annotations.models import MaskRevision
from annotation_app.lib import tasks
from annotation_app.propagation.tests.factories import make_case, make_target
from annotation_app.rounds import lifecycle
from annotation_app.rounds.models import HeldOutCase, ModelActivation, Round, TrainingRun
from annotation_app.rounds.tests.factories import accepted_target, make_version, trainable_round

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    from annotation_app.celery import app

    calls = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, **kw: calls.append((name, args)))
    return calls


def blob(case, frames=(4, 8)) -> np.ndarray:
    mask = np.zeros(case.shape, dtype=bool)
    mask[frames[0] : frames[1], 26:38, 26:38] = True
    return mask


def test_opening_a_round_pins_the_active_model_and_activating_another_later_changes_nothing_for_it(
    project, manager, owner, client_for
):
    v1, v2 = make_version(project, "v1"), make_version(project, "v2")
    v1.activate()
    body = client_for(manager).post("/api/rounds/", {"project": project.pk}).json()
    assert body["model_version"] == v1.pk
    v2.activate(by=owner)
    assert Round.objects.get(pk=body["id"]).model_version == v1
    refused = client_for(manager).patch(f"/api/rounds/{body['id']}/", {"model_version": v2.pk})
    assert refused.status_code == 400 and "model_version" in refused.json()["errors"]


def test_a_manual_baseline_round_pins_no_model_and_propagating_in_it_answers_409_with_a_reason(
    project, manager, annotator, client_for, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    make_version(project, "v1").activate()
    baseline = client_for(manager).post("/api/rounds/", {"project": project.pk, "is_manual_baseline": True}).json()
    assert baseline["model_version"] is None
    target = make_target(make_case(project), annotator)
    target.round_id = baseline["id"]
    target.save(update_fields=["round"])
    response = client_for(annotator).post(f"/api/targets/{target.pk}/propagate/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"].startswith("round 1 is the manual baseline: the model makes no proposals")
    # turning the flag off while the round is open pins the active model
    assert client_for(manager).patch(f"/api/rounds/{baseline['id']}/", {"is_manual_baseline": False}).json()[
        "model_version"
    ] == project.model_versions.get(name="v1").pk


def test_a_closed_round_cannot_be_edited(project, manager, client_for):
    round_ = lifecycle.close_round(lifecycle.open_round(project))
    response = client_for(manager).patch(f"/api/rounds/{round_.pk}/", {"is_manual_baseline": True})
    assert response.status_code == 409


def test_closing_freezes_the_accepted_final_revisions_of_this_and_earlier_rounds_with_a_content_hash(
    project, manager, owner, client_for
):
    first = lifecycle.open_round(project)
    case_a, case_b, held = make_case(project, name="a"), make_case(project, name="b"), make_case(project, name="h")
    old = accepted_target(case_a, first, blob(case_a), owner)
    lifecycle.close_round(first)
    second = lifecycle.open_round(project)
    newer = accepted_target(case_b, second, blob(case_b, (2, 6)), owner)
    MaskRevision.append(newer, blob(case_b, (3, 9)), "review", author=owner)  # the final one counts
    make_target(case_b, owner).round = second  # a draft: not in the snapshot
    evaluation = accepted_target(held, second, blob(held), owner)
    HeldOutCase.objects.create(project=project, case=held)
    body = client_for(manager).post(f"/api/rounds/{second.pk}/close/").json()
    final = newer.revisions.order_by("-number").first()
    assert body["snapshot"] == {
        "train": [old.revisions.get().pk, final.pk],
        "held_out": [evaluation.revisions.get().pk],
    }
    assert len(body["snapshot_hash"]) == 64
    assert body["snapshot_hash"] == lifecycle.snapshot_hash(body["snapshot"])
    assert body["snapshot_hash"] != lifecycle.snapshot_hash({"train": body["snapshot"]["train"][:1]})
    # what is annotated afterwards does not change a frozen snapshot
    MaskRevision.append(newer, blob(case_b), "review", author=owner)
    assert Round.objects.get(pk=second.pk).snapshot == body["snapshot"]


def test_the_default_split_holds_out_one_case_of_each_modality_with_two_or_more_deterministically(project, owner):
    round_ = lifecycle.open_round(project)
    cases = [make_case(project, name=f"ct {i}") for i in range(3)]
    lone_mr = make_case(project, name="mr")
    lone_mr.modality = "MR"
    lone_mr.save(update_fields=["modality"])
    for case in [*cases, lone_mr]:
        accepted_target(case, round_, blob(case), owner)
    made = lifecycle.default_held_out(project.pk, round_.number)
    ranked = sorted(cases, key=lambda c: lifecycle._split_rank(project.pk, c.pk))
    assert [(h.case, h.source) for h in made] == [(ranked[0], "default")]
    assert lifecycle.default_held_out(project.pk, round_.number) == []  # CT has one now; MR is alone
    snapshot = lifecycle.close_round(round_).snapshot
    assert len(snapshot["held_out"]) == 1 and len(snapshot["train"]) == 3


def test_training_needs_a_closed_round_with_a_snapshot_and_one_run_at_a_time(
    project, owner, client_for, sent, django_capture_on_commit_callbacks
):
    client = client_for(owner)
    open_round = lifecycle.open_round(project)
    assert client.post(f"/api/rounds/{open_round.pk}/train/", {}).status_code == 409
    lifecycle.close_round(open_round)  # nothing accepted: nothing to train on
    refused = client.post(f"/api/rounds/{open_round.pk}/train/", {})
    assert refused.status_code == 409 and "no accepted masks" in refused.json()["detail"]
    round_ = trainable_round(project, owner)
    bad = client.post(f"/api/rounds/{round_.pk}/train/", {"hyperparameters": {"epochs": 3, "steps": -1}})
    assert bad.status_code == 400
    assert bad.json()["errors"]["hyperparameters"] == ["unknown setting 'epochs'; steps must lie in [1, 1000000]"]
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"/api/rounds/{round_.pk}/train/", {"hyperparameters": {"steps": 5}})
    assert started.status_code == 201 and started.json()["status"] == "queued"
    assert sent == [(tasks.FINE_TUNE.name, [started.json()["id"]])]
    assert client.post(f"/api/rounds/{round_.pk}/train/", {}).status_code == 409
    client.post(f"/api/training-runs/{started.json()['id']}/cancel/")
    assert client.post(f"/api/rounds/{round_.pk}/train/", {}).status_code == 201


def test_managers_mark_and_unmark_held_out_cases(project, manager, annotator, outsider, client_for):
    case = make_case(project)
    assert client_for(annotator).post("/api/held-out-cases/", {"case": case.pk}).status_code == 403
    marked = client_for(manager).post("/api/held-out-cases/", {"case": case.pk})
    assert marked.status_code == 201, marked.content
    assert (marked.json()["project"], marked.json()["source"]) == (project.pk, "manager")
    assert client_for(manager).post("/api/held-out-cases/", {"case": case.pk}).status_code == 409
    assert client_for(outsider).post("/api/held-out-cases/", {"case": case.pk}).status_code == 400
    assert client_for(manager).delete(f"/api/held-out-cases/{marked.json()['id']}/").status_code == 204


def test_promote_needs_a_reason_and_rollback_only_goes_back_to_a_version_that_was_active(project, owner, client_for):
    client = client_for(owner)
    v1, v2, never = make_version(project, "v1"), make_version(project, "v2"), make_version(project, "never")
    v1.activate(by=owner)
    assert client.post(f"/api/model-versions/{v2.pk}/promote/", {}).status_code == 400
    assert client.post(f"/api/model-versions/{v2.pk}/promote/", {"reason": "better"}).json()["status"] == "active"
    assert client.post(f"/api/model-versions/{never.pk}/rollback/", {"reason": "x"}).status_code == 409
    assert client.post(f"/api/model-versions/{v1.pk}/rollback/", {"reason": "v2 misses lesions"}).status_code == 200
    log = client.get(f"/api/model-activations/?project={project.pk}").json()["results"]
    assert [(e["kind"], e["version"], e["previous"], e["reason"]) for e in log] == [
        ("rollback", v1.pk, v2.pk, "v2 misses lesions"),
        ("promote", v2.pk, v1.pk, "better"),
        ("activate", v1.pk, None, ""),
    ]
    assert ModelActivation.objects.filter(by=owner).count() == 3


def test_a_run_whose_worker_stopped_beating_is_sent_again_and_fails_after_too_many_losses(
    project, owner, monkeypatch, transactional_db
):
    from annotation_app.celery import app

    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, **kw: sent.append((name, args)))
    round_ = trainable_round(project, owner)
    run = lifecycle.start_training(round_, owner)
    Round.objects.filter(pk=round_.pk).update(status="training")
    old = timezone.now() - timedelta(seconds=600)
    TrainingRun.objects.filter(pk=run.pk).update(status="running", worker="w#1", heartbeat_at=old, attempts=1)
    sent.clear()
    assert lifecycle.requeue_stale_runs(stale_after_s=60, max_attempts=3) == [run.pk]
    run.refresh_from_db()
    assert (run.status, run.worker) == ("queued", "") and sent == [(tasks.FINE_TUNE.name, [run.pk])]
    TrainingRun.objects.filter(pk=run.pk).update(status="running", worker="w#2", heartbeat_at=old, attempts=3)
    assert lifecycle.requeue_stale_runs(stale_after_s=60, max_attempts=3) == []
    run.refresh_from_db()
    assert run.status == "failed" and run.error.startswith("the worker was lost 3 times while training")
    assert Round.objects.get(pk=round_.pk).status == "closed"  # ready for another run
