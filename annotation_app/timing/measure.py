"""Time per target from raw interaction events and job spans: the rules, in one pure function.

No database here: `measure()` takes plain events and job spans so that every rule can be tested with
streams whose answer is known to the second. The README ("Time per lesion: what counts") states the
same rules for a manager; keep the two in step (bump `ALGORITHM` in service.py when a rule changes).

The rules, in the order they apply:
1. Duplicates count once: the same client event id, or the same person, kind, client time, target and
   payload (a re-recorded copy), keeps the copy the server received first.
2. Client clocks are bounded by server receive times: each person's clock offset is the smallest
   (received_at - client_ts) over their events, and every event is placed at client_ts + offset. No
   event then lies after its receipt, gaps between one person's events keep their client-measured
   length, and the events line up with the job rows, which carry server times.
3. A person's events on all targets form one stream; the time between two consecutive events belongs
   to the target of the earlier one (moving to another target ends the interval). Events sent before
   any target was picked (case-level) belong to the next target the person picks in that case
   (finding the lesion).
4. An interval is left out while the page is hidden, after the target was closed, and, apart from
   waiting (5), when it is longer than the idle threshold or follows an `idle` event. Hidden, idle and
   closed states end with the next event that shows a person at the page.
5. Waiting: the part of an interval that lies inside a propagation job of the target (created ->
   finished, server clock) is waiting for the model, also when nobody touches anything meanwhile.
6. The rest is reviewing while the target stands submitted (a `submit` until a `review_reject`);
   otherwise it takes the phase of the person's next action on the target: a prompt or propagation
   request -> prompting, a stroke, undo, redo or submit -> correcting, accept/reject -> reviewing.
   With no later action: correcting once the model answered or the person edited, else prompting.
"""

import bisect
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

PHASES = ("prompting", "waiting", "correcting", "reviewing")
#: phases that make up the annotation time of a lesion (reviewing is reported beside it)
ANNOTATION_PHASES = ("prompting", "waiting", "correcting")

#: events that show a person at the page: they end hidden, idle and closed states
PERSON_KINDS = frozenset(
    {
        "target_opened",
        "prompt_placed",
        "propagation_requested",
        "edit_stroke",
        "undo",
        "redo",
        "submit",
        "review_accept",
        "review_reject",
        "focus",
        "visibility_visible",
        "active",
        "heartbeat",
        "custom",
    }
)
#: the phase an action gives the thinking time before it
ACTION_PHASE = {
    "prompt_placed": "prompting",
    "propagation_requested": "prompting",
    "edit_stroke": "correcting",
    "undo": "correcting",
    "redo": "correcting",
    "submit": "correcting",
    "review_accept": "reviewing",
    "review_reject": "reviewing",
}
EDIT_KINDS = frozenset({"edit_stroke", "undo", "redo"})
COUNTED_KINDS = {
    "prompts": "prompt_placed",
    "propagations": "propagation_requested",
    "strokes": "edit_stroke",
    "undos": "undo",
    "redos": "redo",
}


@dataclass(frozen=True)
class Event:
    uid: str  #: the client event id
    kind: str
    user: int
    client_ts: datetime
    received_at: datetime
    target: int | None  #: None: sent before a target was picked (case level)
    case: int | None = None
    payload: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class Span:
    """A propagation job from creation to its end, on the server clock."""

    start: datetime
    end: datetime


@dataclass
class Timing:
    phases: dict[str, float]
    #: time not counted: "idle" (gaps over the threshold, after `idle`) and "hidden" (page hidden)
    left_out: dict[str, float]
    per_user: dict[int, dict[str, float]]
    counts: dict[str, int]
    submitted_by: int | None
    clock_offsets_s: dict[int, float]
    duplicates: int
    first_event: datetime | None
    last_event: datetime | None

    @property
    def time_s(self) -> float:
        """Annotation time: prompting + waiting + correcting."""
        return sum(self.phases[p] for p in ANNOTATION_PHASES)

    @property
    def active_s(self) -> float:
        return self.time_s + self.phases["reviewing"]


def dedupe(events: Iterable[Event]) -> tuple[list[Event], int]:
    """Keep the first received copy of each event (by id, and by content for re-recorded copies)."""
    kept: list[Event] = []
    ids: set[str] = set()
    contents: set[tuple] = set()
    ordered = sorted(events, key=lambda e: (e.received_at, e.uid))
    for e in ordered:
        content = (e.user, e.kind, e.client_ts, e.target, json.dumps(dict(e.payload), sort_keys=True, default=str))
        if e.uid in ids or content in contents:
            continue
        ids.add(e.uid)
        contents.add(content)
        kept.append(e)
    return kept, len(ordered) - len(kept)


def clock_offsets(events: Iterable[Event]) -> dict[int, float]:
    """Per person: min(received_at - client_ts) in seconds (the fastest delivery taken as instant)."""
    offsets: dict[int, float] = {}
    for e in events:
        delta = (e.received_at - e.client_ts).total_seconds()
        if e.user not in offsets or delta < offsets[e.user]:
            offsets[e.user] = delta
    return offsets


def _merge(spans: Iterable[Span]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for s in sorted(spans, key=lambda s: s.start):
        a, b = s.start.timestamp(), s.end.timestamp()
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _overlap(a: float, b: float, spans: list[tuple[float, float]]) -> float:
    total = 0.0
    for s, e in spans:
        if e <= a:
            continue
        if s >= b:
            break
        total += min(b, e) - max(a, s)
    return total


def measure(target: int, events: Iterable[Event], jobs: Iterable[Span], idle_threshold_s: float) -> Timing:
    """Time spent on `target` by phase. `events`: the target's events plus, for the same people, their
    case-level events and events on other targets around it (those end intervals; see rule 3)."""
    kept, duplicates = dedupe(events)
    offsets = clock_offsets(kept)
    spans = _merge(jobs)
    job_ends = sorted(e for _, e in spans)

    # rule 2: one stream per person on the server clock
    streams: dict[int, list[tuple[float, Event]]] = defaultdict(list)
    for e in kept:
        streams[e.user].append((e.client_ts.timestamp() + offsets[e.user], e))
    for stream in streams.values():
        stream.sort(key=lambda te: (te[0], te[1].received_at, te[1].uid))

    # rule 3: which events are this target's
    own: dict[int, list[bool]] = {}
    for user, stream in streams.items():
        flags = [False] * len(stream)
        next_target: tuple[int | None, int | None] = (None, None)
        for i in range(len(stream) - 1, -1, -1):
            e = stream[i][1]
            if e.target is not None:
                next_target = (e.target, e.case)
                flags[i] = e.target == target
            else:
                flags[i] = next_target[0] == target and (e.case is None or next_target[1] in (None, e.case))
        own[user] = flags

    # rule 6: submitted from a `submit` until a `review_reject`, whoever sent them
    switches: list[tuple[float, bool]] = []
    for user, stream in streams.items():
        for (t, e), mine in zip(stream, own[user], strict=True):
            if mine and e.kind in ("submit", "review_reject"):
                switches.append((t, e.kind == "submit"))
    switches.sort()
    switch_times = [t for t, _ in switches]

    def submitted_at(t: float) -> bool:
        i = bisect.bisect_right(switch_times, t)
        return i > 0 and switches[i - 1][1]

    phases = dict.fromkeys(PHASES, 0.0)
    left_out = {"idle": 0.0, "hidden": 0.0}
    per_user: dict[int, dict[str, float]] = {}
    counts = dict.fromkeys([*COUNTED_KINDS, "events"], 0)
    submitted_by = None
    last_submit = float("-inf")
    first: datetime | None = None
    last: datetime | None = None

    for user, stream in streams.items():
        mine = own[user]
        mine_phases = dict.fromkeys(PHASES, 0.0)
        # the phase of the next action after each position (rule 6)
        next_phase: list[str | None] = [None] * len(stream)
        upcoming: str | None = None
        for i in range(len(stream) - 1, -1, -1):
            next_phase[i] = upcoming
            if mine[i] and stream[i][1].kind in ACTION_PHASE:
                upcoming = ACTION_PHASE[stream[i][1].kind]
        hidden = idle = closed = edited = False
        for i, (t, e) in enumerate(stream):
            if not mine[i]:
                continue
            counts["events"] += 1
            for name, kind in COUNTED_KINDS.items():
                counts[name] += e.kind == kind
            if e.kind == "submit" and t >= last_submit:
                submitted_by, last_submit = user, t
            if e.kind in PERSON_KINDS:
                hidden = idle = closed = False
            if e.kind == "visibility_hidden":
                hidden = True
            elif e.kind == "idle":
                idle = True
            elif e.kind == "target_closed":
                closed = True
            edited = edited or e.kind in EDIT_KINDS
            if i + 1 == len(stream):
                continue
            a, b = t, stream[i + 1][0]
            gap = b - a
            if gap <= 0 or closed:
                continue
            if hidden:
                left_out["hidden"] += gap
                continue
            waiting = _overlap(a, b, spans)
            mine_phases["waiting"] += waiting
            rest = gap - waiting
            if idle or gap > idle_threshold_s:
                left_out["idle"] += rest
                continue
            if submitted_at(a):
                phase = "reviewing"
            elif next_phase[i] is not None:
                phase = next_phase[i]
            else:
                answered = bisect.bisect_right(job_ends, a) > 0
                phase = "correcting" if answered or edited else "prompting"
            mine_phases[phase] += rest
        if any(mine):
            per_user[user] = {p: round(v, 3) for p, v in mine_phases.items()}
            for p, v in mine_phases.items():
                phases[p] += v
    own_times = [t for user, stream in streams.items() for (t, _), m in zip(stream, own[user], strict=True) if m]
    if own_times:
        first = datetime.fromtimestamp(min(own_times), tz=UTC)
        last = datetime.fromtimestamp(max(own_times), tz=UTC)
    return Timing(
        phases={p: round(v, 3) for p, v in phases.items()},
        left_out={k: round(v, 3) for k, v in left_out.items()},
        per_user=per_user,
        counts=counts,
        submitted_by=submitted_by,
        clock_offsets_s={u: round(o, 3) for u, o in offsets.items()},
        duplicates=duplicates,
        first_event=first,
        last_event=last,
    )
