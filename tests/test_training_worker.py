"""The learning loop with REAL worker processes on Redis and Postgres (issue 14).

A round of synthetic echo videos (64 px, 16 frames) whose accepted masks are the left ventricle trains
the shipped bootstrap model (bootstrap_s, trained on CT only: it loses the ventricle) for a few dozen
steps on one thread; a third video is held out. The assertions are about what the product promises:
held-out Dice rises over the parent by a margin and the gate activates the candidate; a worker killed
mid-run is replaced and the run resumes from its stored checkpoint with exactly one new version; a
candidate trained on shuffled masks is rejected and the parent stays; the model a round pinned serves
its jobs whatever is activated later, and a rollback brings the earlier version back for new rounds.
"""

import time

import numpy as np
import pytest

from annotation_app.propagation.models import JobStatus, PropagationJob
from annotation_app.propagation.tests.factories import make_case, make_target, tiny_model_version
from annotation_app.rounds.models import ModelActivation, ModelVersion, Round, TrainingRun
from annotation_app.rounds.tests.factories import accepted_target, echo_case, register_bootstrap

pytestmark = pytest.mark.slow

#: a tiny run: ~1 s a step on one loaded CPU thread
TINY = {"steps": 30, "num_frames": 3, "lr_encoder": 6e-4, "lr_other": 1e-3, "checkpoint_every": 10,
        "validate_every": 0}  # fmt: skip
WORKER_ENV = {
    "MEDSAM2_DEVICE": "cpu",
    "OMP_NUM_THREADS": "1",
    "TRAINING_HEARTBEAT_S": "1",
    "TRAINING_STALE_AFTER_S": "4",
    "TRAINING_PROGRESS_S": "1",
    "PROPAGATION_HEARTBEAT_S": "0.3",
    "PROPAGATION_STALE_AFTER_S": "2",
    "PROPAGATION_RECOVERY_INTERVAL_S": "1",
}


def wait_for(predicate, timeout: float, what: str, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    log = worker.log(6000) if worker is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{log}")


def finished_run(run_id: int, worker, timeout: float = 240.0) -> TrainingRun:
    def done():
        run = TrainingRun.objects.get(pk=run_id)
        return run if run.is_finished else None

    return wait_for(done, timeout, f"training run {run_id} to finish", worker)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def echo_round(client, project, owner, shuffle: bool = False) -> Round:
    """Round 1 (pinned to the active version) with two trained and one held-out echo video, closed."""
    round_id = client.post("/api/rounds/", {"project": project.pk}).json()["id"]
    round_ = Round.objects.get(pk=round_id)
    rng = np.random.default_rng(0)
    for seed in (1, 2, 100):
        case, mask = echo_case(project, seed)
        if shuffle and seed != 100:  # the "accepted" masks of the training videos: pixels shuffled
            t, h, w = mask.shape
            mask = mask.reshape(t, h * w)[:, rng.permutation(h * w)].reshape(t, h, w)
        accepted_target(case, round_, mask, owner)
        if seed == 100:
            assert client.post("/api/held-out-cases/", {"case": case.pk}).status_code == 201
    closed = client.post(f"/api/rounds/{round_id}/close/").json()
    assert closed["status"] == "closed" and len(closed["snapshot"]["train"]) == 2
    assert len(closed["snapshot"]["held_out"]) == 1 and len(closed["snapshot_hash"]) == 64
    return Round.objects.get(pk=round_id)


def train(client, round_: Round, **settings) -> int:
    response = client.post(f"/api/rounds/{round_.pk}/train/", {"hyperparameters": {**TINY, **settings}})
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_training_through_the_api_raises_held_out_dice_over_the_parent_and_the_gate_activates_it(
    start_celery_worker, project, owner, client_for, media
):
    parent = register_bootstrap(project)
    client = client_for(owner)
    round_ = echo_round(client, project, owner)
    worker = start_celery_worker(queues=("training",), env=WORKER_ENV, name="train")
    run = finished_run(train(client, round_), worker)
    assert run.status == "succeeded", (run.error, run.log, worker.log())
    version = ModelVersion.objects.get(training_run=run)
    held = version.metrics["held_out"]
    assert held["candidate"]["mean_dice"] >= held["parent"]["mean_dice"] + 0.1, held
    assert held["candidate"]["by_modality"]["US"]["targets"] == 1
    assert version.status == "active" and version.parent == parent and version.round == round_
    assert (version.snapshot_hash, version.config_name) == (round_.snapshot_hash, "bootstrap_s")
    assert version.checkpoint_key == f"models/{project.pk}/runs/{run.pk}/model.pt" and len(version.sha256) == 64
    assert version.metrics["gate"]["passed"] is True and version.code_version
    gate = ModelActivation.objects.get(version=version)
    assert (gate.kind, gate.by, gate.previous) == ("gate", None, parent)
    # the run row told its story: progress, learning rate, ETA, the loss curve, the log
    assert (run.step, run.total_steps, run.progress) == (30, 30, 1.0)
    assert run.learning_rate is not None and run.eta_s is not None
    assert sum(1 for point in run.history if "loss" in point) >= 2
    assert "passes the gate" in run.log
    assert Round.objects.get(pk=round_.pk).status == "done"
    # the next round pins the candidate
    assert client.post("/api/rounds/", {"project": project.pk}).json()["model_version"] == version.pk


def test_a_worker_killed_mid_run_is_replaced_and_the_run_resumes_from_its_checkpoint_with_one_new_version(
    start_celery_worker, project, owner, client_for, media
):
    register_bootstrap(project)
    client = client_for(owner)
    round_ = echo_round(client, project, owner)
    doomed = start_celery_worker(queues=("training",), env=WORKER_ENV, name="doomed")
    run_id = train(client, round_, steps=40)

    def past_a_checkpoint():
        run = TrainingRun.objects.get(pk=run_id)
        return run.checkpoint_key and run.step >= 12

    wait_for(past_a_checkpoint, 240, "a stored checkpoint", doomed)
    doomed.kill9()
    stopped_at = TrainingRun.objects.get(pk=run_id)
    assert stopped_at.status == "running" and stopped_at.step < 40

    rescuer = start_celery_worker(queues=("training",), env=WORKER_ENV, name="rescuer")
    run = finished_run(run_id, rescuer)
    assert run.status == "succeeded", (run.error, run.log)
    assert run.attempts == 2 and run.worker.startswith(rescuer.name)
    assert run.metrics["train"]["resumed_from"] >= 10 and "resumed from the checkpoint at step" in run.log
    assert ModelVersion.objects.filter(training_run=run).count() == 1
    assert ModelVersion.objects.filter(project=project).count() == 2  # the parent and this one


def test_the_gate_rejects_a_candidate_trained_on_shuffled_masks_and_the_parent_stays_active(
    start_celery_worker, project, owner, client_for, media
):
    parent = register_bootstrap(project)
    client = client_for(owner)
    round_ = echo_round(client, project, owner, shuffle=True)
    worker = start_celery_worker(queues=("training",), env=WORKER_ENV, name="train")
    run = finished_run(train(client, round_), worker)
    assert run.status == "succeeded", (run.error, run.log)
    version = ModelVersion.objects.get(training_run=run)
    held = version.metrics["held_out"]
    assert held["candidate"]["mean_dice"] < held["parent"]["mean_dice"] - 0.01, held
    assert version.status == "rejected" and "fails the gate" in version.status_reason
    assert ModelVersion.active_for(project.pk) == parent
    # an admin may still promote it, and says why
    promoted = client.post(f"/api/model-versions/{version.pk}/promote/", {"reason": "want to see it fail"})
    assert promoted.json()["status"] == "active"
    record = ModelActivation.objects.get(version=version)
    assert (record.kind, record.by, record.reason) == ("promote", owner, "want to see it fail")


def test_a_rounds_jobs_keep_their_pinned_model_and_a_rollback_serves_new_rounds_the_earlier_version(
    start_celery_worker, project, owner, annotator, client_for, media, tmp_path
):
    v1 = tiny_model_version(project, tmp_path, name="v1", seed=0)  # active
    v2 = tiny_model_version(project, tmp_path, name="v2", seed=1)  # activated by the factory: back to v1
    v1.activate()
    admin, member = client_for(owner), client_for(annotator)
    worker = start_celery_worker(queues=("gpu",), env=WORKER_ENV, name="gpu")
    case = make_case(project)

    def job_in(round_id):
        target = make_target(case, annotator)
        target.round_id = round_id
        target.save(update_fields=["round"])
        response = member.post(f"/api/targets/{target.pk}/propagate/", {}, format="json")
        assert response.status_code == 202, response.content
        job_id = response.json()["id"]
        job = wait_for(lambda: PropagationJob.objects.filter(pk=job_id, status__in=["succeeded", "failed"]).first(),
                       120, f"job {job_id}", worker)  # fmt: skip
        assert job.status == JobStatus.SUCCEEDED, job.error
        return job.model_version_id

    first = admin.post("/api/rounds/", {"project": project.pk}).json()
    assert first["model_version"] == v1.pk
    assert admin.post(f"/api/model-versions/{v2.pk}/promote/", {"reason": "better on MRI"}).status_code == 200
    assert job_in(first["id"]) == v1.pk  # the round pinned v1; v2 being active changes nothing for it
    admin.post(f"/api/rounds/{first['id']}/close/")
    second = admin.post("/api/rounds/", {"project": project.pk}).json()
    assert job_in(second["id"]) == v2.pk

    rolled = admin.post(f"/api/model-versions/{v1.pk}/rollback/", {"reason": "v2 misses small lesions"})
    assert rolled.status_code == 200 and rolled.json()["status"] == "active"
    admin.post(f"/api/rounds/{second['id']}/close/")
    third = admin.post("/api/rounds/", {"project": project.pk}).json()
    assert third["model_version"] == v1.pk and job_in(third["id"]) == v1.pk
    assert job_in(second["id"]) == v2.pk  # an earlier round keeps its own pin
    kinds = list(ModelActivation.objects.filter(project=project).order_by("id").values_list("kind", "by", "reason"))
    assert kinds[-2:] == [("promote", owner.pk, "better on MRI"), ("rollback", owner.pk, "v2 misses small lesions")]
