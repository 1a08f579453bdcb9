"""A fine-tuning run (FINE_TUNE, `training` queue): a round's snapshot -> a candidate version -> the gate.

`run_training(run_id, worker)` reads the steps top to bottom:
1. claim the run (a queued run, or a running one whose worker stopped beating) and move its round to
   `training`; a heartbeat thread refreshes the row while the run lives;
2. the parent: the model the round pinned (its config and checkpoint), else the installation's default;
3. the data: the round's frozen snapshot, each accepted revision on its case's canonical array turned
   into exactly the frames inference encodes (`inference_worker.intensity.model_input`), in real units;
4. train with `medsam2.training.loop.train` (the published recipe unless the run's settings say
   otherwise): progress on the row every TRAINING_PROGRESS_S seconds, validation Dice on the held-out
   cases every `validate_every` steps, the resumable checkpoint copied to storage every
   `checkpoint_every` steps (models/<project>/runs/<run>/checkpoint.pt), the cancel flag read before
   every step; a redelivered run resumes from that checkpoint;
5. evaluate candidate (loaded strictly from the file it wrote) and parent the same way on the held-out
   targets (box from the accepted mask's key slice, propagation both ways, Dice and NSD at 2 mm);
6. register exactly one ModelVersion for the run (a unique constraint) with its provenance;
7. the gate: activate the candidate if its mean held-out Dice is not below the parent's by more than the
   project's margin (settings["gate_margin"], default 0.01), else keep it rejected with the reason.

torch and the training stack are imported inside the steps that use them, so a worker process starts
(and serves its other queues) without loading them.
"""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotation_app.annotations.models import MaskRevision
from annotation_app.imaging.storage import open_case_array
from annotation_app.rounds.models import (
    ActivationKind,
    ModelStatus,
    ModelVersion,
    Round,
    TrainingRun,
    TrainingStatus,
    checkpoint_prefix,
)
from inference_worker.intensity import model_input
from inference_worker.model_cache import ModelSpec, ModelUnavailable, choose_device
from inference_worker.model_source import default_spec, spec_for_version, storage_file
from medsam2.training.recipe import FineTuneSettings

log = logging.getLogger(__name__)

DEFAULT_GATE_MARGIN = 0.01
TOLERANCE_MM = 2.0


class RunError(Exception):
    """A permanent problem with the run's inputs: fail it with this message."""


# --- data ------------------------------------------------------------------------------------------
@dataclass
class EvalTarget:
    target: int
    case: int
    modality: str


@dataclass
class Dataset:
    """medsam2 training cases built from revisions, and which (case name, object id) is which target."""

    cases: list = field(default_factory=list)
    targets: dict[tuple[str, int], EvalTarget] = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        return sorted({t.modality for t in self.targets.values()})


def snapshot_dataset(revision_ids: list[int]) -> Dataset:
    """One medsam2 Case per image (a case whose targets overlap is split so each label map is exact)."""
    from medsam2.training.data import Case as TrainCase

    revisions = MaskRevision.objects.filter(pk__in=revision_ids).select_related("target__case")
    by_case: dict[int, list[MaskRevision]] = defaultdict(list)
    for revision in revisions:
        by_case[revision.target.case_id].append(revision)
    data = Dataset()
    for case_id in sorted(by_case):
        case = by_case[case_id][0].target.case
        seen = model_input(case, open_case_array(case))
        image = np.asarray(seen.array)
        # display frames (a windowed CT) pass through medsam2's to_uint8 unchanged as "OT", exactly as
        # the predictor's init_state(display=True) uses them; real values keep their modality's scaling
        modality = "OT" if seen.display else seen.modality
        spacing = tuple(float(s) for s in case.spacing) if len(case.spacing or []) == 3 else (1.0, 1.0, 1.0)
        groups: list[tuple[np.ndarray, list[tuple[int, MaskRevision]]]] = []
        for revision in sorted(by_case[case_id], key=lambda r: r.target_id):
            mask = revision.mask()
            if not mask.any():
                continue
            for labels, members in groups:
                if not (labels[mask] != 0).any():
                    labels[mask] = len(members) + 1
                    members.append((len(members) + 1, revision))
                    break
            else:
                labels = np.zeros(mask.shape, dtype=np.int32)
                labels[mask] = 1
                groups.append((labels, [(1, revision)]))
        for index, (labels, members) in enumerate(groups):
            name = f"case {case.pk}" + (f" part {index + 1}" if len(groups) > 1 else "")
            data.cases.append(TrainCase(image=image, labels=labels, spacing=spacing, modality=modality, name=name))
            for object_id, revision in members:
                data.targets[(name, object_id)] = EvalTarget(revision.target_id, case.pk, case.modality)
    return data


def scores(result, data: Dataset) -> dict:
    """An EvalResult as {"mean_dice", "mean_nsd", "by_modality", "targets": {target id: {dice, nsd}}}."""
    per_target: dict[int, dict] = {}
    by_modality: dict[str, list] = defaultdict(list)
    for obj in result.objects:
        info = data.targets[(obj.case, obj.object_id)]
        per_target[info.target] = {"case": info.case, "modality": info.modality, "dice": round(obj.dice, 4),
                                   "nsd": round(obj.nsd, 4)}  # fmt: skip
        by_modality[info.modality].append(obj)
    return {
        "mean_dice": _mean([o.dice for o in result.objects]),
        "mean_nsd": _mean([o.nsd for o in result.objects]),
        "targets": per_target,
        "by_modality": {
            m: {"dice": _mean([o.dice for o in objs]), "nsd": _mean([o.nsd for o in objs]), "targets": len(objs)}
            for m, objs in sorted(by_modality.items())
        },
    }


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


# --- the run -------------------------------------------------------------------------------------
class Heartbeat(threading.Thread):
    def __init__(self, run: TrainingRun, worker: str, interval: float):
        super().__init__(name=f"training-heartbeat-{run.pk}", daemon=True)
        self.run_row, self.worker, self.interval = run, worker, interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.wait(self.interval):
                try:
                    self.run_row.beat(self.worker)
                except Exception as exc:  # keep beating; the run reports database trouble itself
                    log.warning("heartbeat of training run %s failed: %s", self.run_row.pk, exc)
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


class FineTuneRun:
    """The steps of one run, in the order of the module docstring."""

    def __init__(self, run: TrainingRun, worker: str):
        self.run, self.worker = run, worker
        self.round: Round = run.round
        self.settings = FineTuneSettings.from_dict(run.hyperparameters)
        self.device = choose_device()
        self.work = Path(settings.VAR_DIR) / "training" / f"run-{run.pk}"
        self.prefix = f"{checkpoint_prefix(run.project_id)}runs/{run.pk}/"
        self.progress = ProgressWriter(run, self.settings.steps)

    # 2. the parent
    def parent(self) -> tuple[ModelSpec, ModelVersion | None]:
        version = self.run.base_model or self.round.model_version
        return (spec_for_version(version) if version is not None else default_spec()), version

    # 3. the data
    def datasets(self) -> tuple[Dataset, Dataset]:
        snapshot = self.round.snapshot or {}
        train, held_out = snapshot_dataset(snapshot.get("train", [])), snapshot_dataset(snapshot.get("held_out", []))
        if not train.cases:
            raise RunError(f"round {self.round.number}'s snapshot has no accepted masks to train on")
        return train, held_out

    # 4. train
    def train(self, spec: ModelSpec, train: Dataset, held_out: Dataset):
        from medsam2.build import build_model
        from medsam2.training.data import ClipDataset
        from medsam2.training.loop import TrainConfig
        from medsam2.training.loop import train as train_loop
        from medsam2.training.optim import OptimConfig

        s = self.settings
        model = build_model(spec.config, spec.checkpoint, device=self.device)
        model.train()
        optim = OptimConfig(**s.optim_overrides())
        config = TrainConfig(epochs=1, seed=s.seed, optim=optim, checkpoint_every=s.checkpoint_every,
                             ema_decay=s.ema_decay, device=self.device, show_progress=False)  # fmt: skip
        clips = ClipDataset(train.cases, model.image_size, num_frames=s.num_frames, max_objects=s.max_objects,
                            clips_per_epoch=s.steps, seed=s.seed)  # fmt: skip
        self.restore_checkpoint()
        self.progress.schedule(optim, s.steps)

        def progress(epoch: int, step: int, loss: float) -> None:
            self.progress.step(step, loss)
            if s.validate_every and step % s.validate_every == 0 and step < s.steps and held_out.cases:
                self.validate(model, held_out, step)

        result = train_loop(config, model, clips, self.work, progress=progress, should_cancel=self.should_cancel,
                            on_checkpoint=self.store_checkpoint)  # fmt: skip
        self.progress.flush()
        if result.resumed_from:
            self.run.append_log(f"resumed from the checkpoint at step {result.resumed_from}")
        return result, optim

    def validate(self, model, held_out: Dataset, step: int) -> None:
        from medsam2.training.evaluate import evaluate

        found = scores(evaluate(model, held_out.cases, TOLERANCE_MM, device=self.device), held_out)
        self.progress.validation(step, found["mean_dice"], found["mean_nsd"])
        self.run.append_log(f"step {step}: held-out Dice {found['mean_dice']}, NSD {found['mean_nsd']}")

    def should_cancel(self) -> bool:
        return self.progress.cancel_requested(self.worker)

    def restore_checkpoint(self) -> None:
        """A redelivered run resumes from the checkpoint in storage (another machine has no local copy)."""
        self.work.mkdir(parents=True, exist_ok=True)
        local = self.work / "checkpoint.pt"
        key = self.run.checkpoint_key
        if key and not local.exists() and default_storage.exists(key):
            shutil.copyfile(storage_file(key), local)

    def store_checkpoint(self, path: Path, step: int) -> None:
        key = f"{self.prefix}checkpoint.pt"
        _replace_in_storage(path, key)
        TrainingRun.objects.filter(pk=self.run.pk).update(checkpoint_key=key)
        self.run.checkpoint_key = key

    # 5. evaluate
    def evaluate(self, candidate_path: Path, config: str, parent: ModelSpec, held_out: Dataset) -> dict:
        from medsam2.build import build_model
        from medsam2.training.evaluate import evaluate

        if not held_out.cases:
            return {}
        # the candidate as stored: a strict load of the file it wrote, so what is scored is what will run
        found = {}
        for role, path, cfg in (("candidate", candidate_path, config), ("parent", parent.checkpoint, parent.config)):
            model = build_model(cfg, path, device=self.device)
            found[role] = scores(evaluate(model, held_out.cases, TOLERANCE_MM, device=self.device), held_out)
        return found

    # 6. register
    def register(self, model_path: Path, spec: ModelSpec, parent: ModelVersion | None, metrics: dict,
                 config: dict) -> ModelVersion:  # fmt: skip
        from medsam2.build import file_sha256

        existing = ModelVersion.objects.filter(training_run=self.run).first()
        if existing is not None:  # a redelivery after the version was registered
            return existing
        key = _replace_in_storage(model_path, f"{self.prefix}model.pt")
        try:
            return ModelVersion.objects.create(
                project_id=self.run.project_id,
                name=f"round {self.round.number} run {self.run.pk}",
                checkpoint_key=key,
                sha256=file_sha256(model_path),
                config_name=spec.config,
                parent=parent,
                training_run=self.run,
                round=self.round,
                snapshot_hash=self.round.snapshot_hash,
                hyperparameters=config,
                code_version=code_version(),
                metrics=metrics,
                status=ModelStatus.CANDIDATE,
                verified_at=timezone.now(),
                created_by=self.run.requested_by,
            )
        except IntegrityError:  # a racing delivery registered it first
            return ModelVersion.objects.get(training_run=self.run)

    # 7. the gate
    def gate(self, version: ModelVersion, evaluation: dict) -> dict:
        margin = float((self.run.project.settings or {}).get("gate_margin", DEFAULT_GATE_MARGIN))
        candidate = (evaluation.get("candidate") or {}).get("mean_dice")
        parent = (evaluation.get("parent") or {}).get("mean_dice")
        if candidate is None or parent is None:
            reason = "no held-out target to compare on; the candidate waits for an admin to promote it"
            return {"passed": None, "margin": margin, "reason": reason}
        passed = candidate >= parent - margin
        verdict = "passes" if passed else "fails"
        reason = (f"held-out Dice {candidate:.4f} vs the parent's {parent:.4f}: {verdict} the gate "
                  f"(at most {margin:g} below)")  # fmt: skip
        with transaction.atomic():
            version.refresh_from_db()
            if version.status == ModelStatus.CANDIDATE:
                if passed:
                    version.activate(kind=ActivationKind.GATE, reason=reason)
                else:
                    version.reject(reason)
        return {"passed": passed, "candidate_dice": candidate, "parent_dice": parent, "margin": margin,
                "reason": reason}  # fmt: skip

    def execute(self) -> dict:
        self.round.mark_training()
        self.run.append_log(f"started on {self.worker} ({self.device}), attempt {self.run.attempts}")
        spec, parent_version = self.parent()
        train, held_out = self.datasets()
        self.run.append_log(
            f"parent {spec.name}; {len(train.targets)} training and {len(held_out.targets)} held-out targets "
            f"({', '.join(held_out.modalities) or 'no held-out case'})"
        )
        result, optim = self.train(spec, train, held_out)
        if result.cancelled:
            if self.progress.lost_claim:
                return {"run": self.run.pk, "skipped": "claimed by another worker"}
            self.run.finish(TrainingStatus.CANCELLED)
            self.round.mark_trained(succeeded=False)
            self.run.append_log(f"cancelled at step {result.global_step}; checkpoint kept")
            return {"run": self.run.pk, "status": "cancelled"}
        self.run.append_log("training done; evaluating candidate and parent on the held-out targets")
        evaluation = self.evaluate(result.model_path, spec.config, spec, held_out)
        config = {**self.settings.as_dict(), "optim": _plain(optim), "device": self.device}
        metrics = {
            "held_out": {role: _summary(found) for role, found in evaluation.items()},
            "per_target": _per_target(evaluation),
            "train": {"steps": result.global_step, "resumed_from": result.resumed_from,
                      "final_loss": _mean(result.losses[-20:]), "wall_s": round(result.wall_seconds, 1)},
        }  # fmt: skip
        version = self.register(result.model_path, spec, parent_version, metrics, config)
        decision = self.gate(version, evaluation)
        metrics["gate"] = decision
        ModelVersion.objects.filter(pk=version.pk).update(metrics=metrics)
        self.run.append_log(decision["reason"])
        self.run.finish(TrainingStatus.SUCCEEDED, metrics={**metrics, "model_version": version.pk})
        self.round.mark_trained(succeeded=True)
        shutil.rmtree(self.work, ignore_errors=True)  # the checkpoint and the model stay in storage
        return {"run": self.run.pk, "status": "succeeded", "model_version": version.pk, "gate": decision["passed"]}


def _summary(found: dict) -> dict:
    return {key: value for key, value in found.items() if key != "targets"}


def _per_target(evaluation: dict) -> list[dict]:
    candidate = (evaluation.get("candidate") or {}).get("targets", {})
    parent = (evaluation.get("parent") or {}).get("targets", {})
    return [
        {"target": target, "case": row["case"], "modality": row["modality"], "dice": row["dice"], "nsd": row["nsd"],
         "parent_dice": parent.get(target, {}).get("dice"), "parent_nsd": parent.get(target, {}).get("nsd")}
        for target, row in sorted(candidate.items())
    ]  # fmt: skip


def _plain(dataclass_value) -> dict:
    from dataclasses import asdict

    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(dataclass_value).items()}


def _replace_in_storage(path: Path, key: str) -> str:
    if default_storage.exists(key):
        default_storage.delete(key)
    with open(path, "rb") as handle:
        return default_storage.save(key, File(handle, name=Path(key).name))


def code_version() -> str:
    """medsam2-annotate's version and, in a checkout, its git revision."""
    try:
        version = metadata.version("medsam2-annotate")
    except metadata.PackageNotFoundError:
        version = "unknown"
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=settings.BASE_DIR, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{version} ({sha})" if sha else version


class ProgressWriter:
    """Progress on the run row at most every TRAINING_PROGRESS_S seconds: step/total, loss, learning
    rate, ETA, history points for the charts; the cancel flag read at most once a second."""

    def __init__(self, run: TrainingRun, total: int):
        self.run, self.total = run, total
        self.every = float(settings.TRAINING_PROGRESS_S)
        self.last_write = 0.0
        self.last_poll, self.cancelled = 0.0, False
        self.lost_claim = False
        self.started = time.monotonic()
        self.first_step: int | None = None
        self.pending: list[dict] = []
        self.current: dict = {}
        self.lr_at = None

    def schedule(self, optim, total: int) -> None:
        """The learning rate of the decoder's group at each step (the schedule the loop builds)."""
        warm, final = optim.warmup_steps, optim.final_ratio

        def lr_at(step: int) -> float:
            if warm > 0 and step < warm:
                return optim.lr_other * (step + 1) / warm
            t = min(1.0, (step - warm) / max(1, total - warm))
            return optim.lr_other * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t)))

        self.lr_at = lr_at

    def step(self, step: int, loss: float) -> None:
        if self.first_step is None:
            self.first_step, self.started = step - 1, time.monotonic()
        lr = self.lr_at(step - 1) if self.lr_at else None
        self.current = {"step": step, "loss": round(loss, 5), "lr": lr}
        self.pending.append(self.current)
        if time.monotonic() - self.last_write >= self.every or step == self.total:
            self.flush()

    def validation(self, step: int, dice: float | None, nsd: float | None) -> None:
        self.pending.append({"step": step, "val_dice": dice, "val_nsd": nsd})
        TrainingRun.objects.filter(pk=self.run.pk).update(last_validation={"step": step, "mean_dice": dice,
                                                                            "mean_nsd": nsd})  # fmt: skip
        self.flush()

    def flush(self) -> None:
        if not self.current:
            return
        step = self.current["step"]
        done = step - (self.first_step or 0)
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (self.total - step) if done > 0 else None
        # keep the chart's points bounded: a long run's losses are thinned to every k-th step
        history = list(TrainingRun.objects.filter(pk=self.run.pk).values_list("history", flat=True).first() or [])
        history += self.pending
        if len(history) > TrainingRun.HISTORY_POINTS:
            history = history[::2] + (history[-1:] if len(history) % 2 == 0 else [])
        TrainingRun.objects.filter(pk=self.run.pk, status=TrainingStatus.RUNNING).update(
            step=step, total_steps=self.total, loss=self.current["loss"], learning_rate=self.current["lr"],
            eta_s=round(eta, 1) if eta is not None else None, progress=round(step / self.total, 4),
            history=history, heartbeat_at=timezone.now(),
        )  # fmt: skip
        self.pending, self.last_write = [], time.monotonic()

    def cancel_requested(self, worker: str) -> bool:
        """The cancel flag, or another worker having taken the run over (this one then stops quietly)."""
        if time.monotonic() - self.last_poll >= 1.0:
            self.last_poll = time.monotonic()
            row = TrainingRun.objects.filter(pk=self.run.pk).values("cancel_requested", "worker").first()
            self.lost_claim = row is None or row["worker"] != worker
            self.cancelled = row is None or row["cancel_requested"] or self.lost_claim
        return self.cancelled


def run_training(run_id: int, worker: str) -> dict:
    run = TrainingRun.objects.select_related("round", "project", "base_model").filter(pk=run_id).first()
    if run is None:
        return {"run": run_id, "skipped": "no such run"}
    if run.is_finished:
        return {"run": run_id, "skipped": f"already {run.status}"}
    if run.cancel_requested and run.status == TrainingStatus.QUEUED:
        run.finish(TrainingStatus.CANCELLED)
        return {"run": run_id, "status": "cancelled"}
    if run.round is None:
        run.finish(TrainingStatus.FAILED, error="a training run needs a closed round (its snapshot)")
        return {"run": run_id, "status": "failed"}
    if not run.claim(worker, stale_after_s=settings.TRAINING_STALE_AFTER_S):
        return {"run": run_id, "skipped": f"claimed elsewhere ({run.status}, {run.worker})"}
    heart = Heartbeat(run, worker, float(settings.TRAINING_HEARTBEAT_S))
    heart.start()
    try:
        return FineTuneRun(run, worker).execute()
    except Exception as exc:
        if isinstance(exc, RunError | ModelUnavailable):
            message = str(exc)
        elif isinstance(exc, SoftTimeLimitExceeded):
            message = f"the time limit ({settings.TRAINING_TIME_LIMIT_S} s) ran out; the checkpoint is kept"
        else:
            log.exception("training run %s failed", run_id)
            message = f"{type(exc).__name__}: {exc}"
        run.finish(TrainingStatus.FAILED, error=message)
        run.append_log(f"failed: {message}")
        if run.round is not None:
            run.round.mark_trained(succeeded=False)
        return {"run": run_id, "status": "failed", "error": message}
    finally:
        heart.stop()
