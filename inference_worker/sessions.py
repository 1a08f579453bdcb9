"""Each target's tracking session on a worker: kept between jobs, rebuilt identically after a restart.

A correction must reach the model the way the reference SAM2 video predictor gives it: a click on a
tracked slice goes in WITH that slice's current mask logits, and the tracking memory of earlier
prompts and propagations stays. So a worker keeps, per target, the predictor state (sharing the
case's cached frame features) and the ids of the prompts already applied to it; a job applies only
the prompts that are new since (a click on frame f re-prompts f with f's box and all its clicks,
and the predictor feeds f's current logits as the mask input), then propagates.

Every job that succeeds stores what it did to the session in `PropagationJob.session_ops`:
``{"model", "reset", "prompts": [[frame, [prompt ids merged on it]], ...], "passes": [[direction,
start, max_frames], ...]}``. The session a worker holds is the replay of those ops since the last
reset, so a worker that restarted (or another worker) rebuilds it identically by replaying them;
the session is trusted only while the target's newest op is the one it last applied. A withdrawn
prompt (undo) makes the next job a reset: the session starts over from the live prompts.

Sessions live in a small LRU per worker process (settings.MEDSAM2_SESSIONS; a 300-slice CT tracked by
the 512 px model holds ~200 KB of masks and memories per slice, ~60 MB per target).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

OBJ_ID = 1


@dataclasses.dataclass
class TargetSession:
    state: Any  # medsam2.predictor.InferenceState sharing the case's features
    applied: set[int] | None  # prompt ids whose effect the state holds (None: a new session)
    last_job: int | None  # the job whose ops the state ends with (None: nothing applied)
    model: str


@dataclasses.dataclass
class Plan:
    """What a job does to the session: re-prompt these frames (in order), then run these passes."""

    reset: bool
    frames: list[int]
    passes: list[tuple[str, int, int]]  # (direction, start frame, max frames)


class SessionStore:
    def __init__(self, max_sessions: int | None = None):
        if not max_sessions:
            from django.conf import settings

            max_sessions = settings.MEDSAM2_SESSIONS
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[tuple, TargetSession] = OrderedDict()
        self._lock = threading.Lock()
        self.rebuilds = 0

    def get(self, key: tuple) -> TargetSession | None:
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                self._sessions.move_to_end(key)
            return session

    def put(self, key: tuple, session: TargetSession) -> None:
        with self._lock:
            self._sessions[key] = session
            self._sessions.move_to_end(key)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)

    def drop(self, key: tuple) -> None:
        with self._lock:
            self._sessions.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()


#: the sessions of this worker process
SESSIONS = SessionStore()


def fresh_state(base_state: Any) -> Any:
    """An empty tracking state on the same frames and the same (shared, growing) feature cache."""
    return dataclasses.replace(base_state, objects={})


def neighbours(frame: int, anchors: Iterable[int], first: int, last: int) -> tuple[int, int]:
    """(lo, hi): the frames from `frame` up to, not including, the nearest anchor on each side
    (clipped to [first, last])."""
    below = [a for a in anchors if a < frame]
    above = [a for a in anchors if a > frame]
    lo = max(below) + 1 if below else first
    hi = min(above) - 1 if above else last
    return max(lo, first), min(hi, last)


def plan_job(
    session_applied: set[int] | None,
    live: dict[int, int],
    key: int,
    first: int,
    last: int,
    direction: str,
    propagate: bool,
    local: bool,
) -> Plan:
    """Decide a job's work from the session and the live prompts ({prompt id: frame}).

    - no usable session, or a prompt it applied was withdrawn: reset, prompt every frame (key
      first), propagate from the key over [first, last] in `direction`;
    - new prompts on frames F: re-prompt F only; from each f in F propagate up to the next prompted
      frame each way (``local``) or over [first, last], in `direction`;
    - nothing new: propagate from the key as asked (a plain "propagate again"); a range that leaves
      the key out propagates from its end nearest the key ("forward from here": [here, last]).
    """
    frames_all = sorted(set(live.values()))
    reset = session_applied is None or not session_applied <= set(live)
    if reset:
        frames = [key, *[f for f in frames_all if f != key]]
        starts = [key]
    else:
        assert session_applied is not None
        new = {live[p] for p in live if p not in session_applied}
        frames = sorted(new)
        # nothing new: from the key, or "from here" (the near end of a range that leaves the key out)
        starts = frames or [key if first <= key <= last else (first if key < first else last)]
    passes: list[tuple[str, int, int]] = []
    if propagate:
        for s in starts:
            if not first <= s <= last:
                continue
            lo, hi = (first, last)
            if local and not reset and frames:
                lo, hi = neighbours(s, [f for f in frames_all if f != s], first, last)
            if direction in ("both", "forward"):
                passes.append(("forward", s, hi - s))
            if direction in ("both", "backward"):
                passes.append(("backward", s, s - lo))
    return Plan(reset, frames, passes)


def ops_record(plan: Plan, prompts_by_frame: dict[int, list[int]], model: str) -> dict:
    return {
        "model": model,
        "reset": plan.reset,
        "prompts": [[f, list(prompts_by_frame.get(f, []))] for f in plan.frames],
        "passes": [list(p) for p in plan.passes],
    }


def replay(
    predictor: Any,
    state: Any,
    ops_chain: list[dict],
    merged: Callable[[list[int]], dict],
) -> None:
    """Re-apply stored ops (oldest first) to `state`: the same prompts, in the same order, then the
    same passes, so the state ends exactly as on the worker that ran them. `merged(ids)` returns the
    frame's merged prompt {"box", "points", "labels", "mask"} from those prompt ids."""
    for ops in ops_chain:
        if ops.get("reset"):
            predictor.reset(state)
        for frame, ids in ops.get("prompts", []):
            apply_prompt(predictor, state, int(frame), merged(list(ids)))
        for direction, start, max_frames in ops.get("passes", []):
            stream = predictor.propagate(state, direction=direction, start_frame=int(start), max_frames=int(max_frames))
            for _ in stream:
                pass


def apply_prompt(predictor: Any, state: Any, frame: int, p: dict) -> Any:
    """Prompt one frame with its merged prompts; on a tracked frame the predictor adds the frame's
    current logits as the mask input."""
    return predictor.add_prompt(
        state,
        frame,
        OBJ_ID,
        box=p["box"] if p["mask"] is None else None,
        points=(p["points"] or None) if p["mask"] is None else None,
        labels=(p["labels"] or None) if p["mask"] is None else None,
        mask=p["mask"],
    )
