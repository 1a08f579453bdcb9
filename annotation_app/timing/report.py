"""The per-round report: time per lesion (per frame for videos) by modality and label, its reduction
against the manual-baseline round, edit fraction, Dice(first proposal, final), and the same per
annotator. Built from stored TargetTiming rows of completed (submitted or accepted) targets.

Quantiles are numpy's default (linear interpolation between order statistics, R type 7), the same as
d3's, so a chart drawn from the raw values agrees with the table.
"""

from collections import defaultdict

import numpy as np

from annotation_app.annotations.models import TargetStatus
from annotation_app.projects.models import Project
from annotation_app.rounds.models import Round
from annotation_app.timing.measure import PHASES
from annotation_app.timing.models import TargetTiming

DONE = (TargetStatus.SUBMITTED, TargetStatus.ACCEPTED)
VIDEO = "video"


def summary(values: list[float]) -> dict:
    """n, mean, median, q1, q3, iqr, min, max of `values` (None for each when there are none)."""
    if not values:
        return {"n": 0, "mean": None, "median": None, "q1": None, "q3": None, "iqr": None, "min": None, "max": None}
    a = np.asarray(values, dtype=float)
    q1, median, q3 = (float(v) for v in np.percentile(a, [25, 50, 75]))
    return {
        "n": int(a.size),
        "mean": round(float(a.mean()), 3),
        "median": round(median, 3),
        "q1": round(q1, 3),
        "q3": round(q3, 3),
        "iqr": round(q3 - q1, 3),
        "min": round(float(a.min()), 3),
        "max": round(float(a.max()), 3),
    }


def reduction(baseline: float | None, value: float | None) -> float | None:
    """Percent less time than the baseline, as the MedSAM2 article states it: (b - v) / b * 100."""
    if baseline is None or value is None or baseline <= 0:
        return None
    return round((baseline - value) / baseline * 100.0, 2)


def lesion_time(row: TargetTiming) -> float | None:
    """Time per lesion, or per frame for videos; None for a lesion with no recorded events (imported or
    made by a script): its time is unknown, not zero, so it stays out of the time statistics."""
    if not row.n_events:
        return None
    return row.per_frame_s if row.case_kind == VIDEO else row.time_s


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _group_stats(rows: list[TargetTiming]) -> dict:
    times = [t for t in (lesion_time(r) for r in rows) if t is not None]
    timed = [r for r in rows if r.n_events]
    dice = [r.dice for r in rows if r.dice is not None]
    return {
        "n": len(rows),
        "time_s": {**summary(times), "values": sorted(round(t, 3) for t in times)},
        "edit_fraction": _mean([r.edit_fraction for r in rows if r.edit_fraction is not None]),
        "dice": {**summary(dice), "values": sorted(round(d, 4) for d in dice)},
        "hd95_mm": summary([r.hd95_mm for r in rows if r.hd95_mm is not None]),
        "voxels_changed_mean": _mean([r.voxels_changed for r in rows if r.voxels_changed is not None]),
        "phases_mean_s": {p: _mean([getattr(r, f"{p}_s") for r in timed]) or 0.0 for p in PHASES},
        "edits_mean": _mean([r.n_edits for r in timed]),
    }


def build(project: Project, rows: list[TargetTiming], usernames: dict[int, str], filters: dict) -> dict:
    rounds = list(Round.objects.filter(project=project).select_related("model_version").order_by("number"))
    baseline = next((r for r in rounds if r.is_manual_baseline), None)
    done = [r for r in rows if r.status in DONE]
    by_round: dict[int | None, list[TargetTiming]] = defaultdict(list)
    for row in done:
        by_round[row.round_id].append(row)

    def key(row: TargetTiming) -> tuple[str, str, str]:
        return (row.modality, row.label, row.case_kind)

    baseline_stats: dict[tuple, dict] = {}
    if baseline is not None:
        grouped: dict[tuple, list[TargetTiming]] = defaultdict(list)
        for row in by_round.get(baseline.pk, []):
            grouped[key(row)].append(row)
        baseline_stats = {k: _group_stats(v)["time_s"] for k, v in grouped.items()}

    def round_entry(round_: Round | None) -> dict:
        members = by_round.get(round_.pk if round_ else None, [])
        groups: dict[tuple, list[TargetTiming]] = defaultdict(list)
        for row in members:
            groups[key(row)].append(row)
        out_groups = []
        for (modality, label, kind), group_rows in sorted(groups.items()):
            stats = _group_stats(group_rows)
            base = baseline_stats.get((modality, label, kind))
            stats["reduction_pct"] = reduction(base and base["mean"], stats["time_s"]["mean"])
            stats["reduction_median_pct"] = reduction(base and base["median"], stats["time_s"]["median"])
            per_user: dict[int | None, list[TargetTiming]] = defaultdict(list)
            for row in group_rows:
                per_user[row.submitted_by_id].append(row)
            stats["annotators"] = [
                {
                    "user": user,
                    "username": usernames.get(user, "") if user else "",
                    **{k: v for k, v in _group_stats(urows).items() if k in ("n", "time_s", "edit_fraction", "dice")},
                }
                for user, urows in sorted(per_user.items(), key=lambda kv: usernames.get(kv[0], "") if kv[0] else "")
            ]
            out_groups.append(
                {"modality": modality, "label": label, "kind": kind, "unit": "frame" if kind == VIDEO else "lesion"}
                | stats
            )
        return {
            "id": round_.pk if round_ else None,
            "number": round_.number if round_ else None,
            "status": round_.status if round_ else None,
            "is_manual_baseline": bool(round_ and round_.is_manual_baseline),
            "model_version": round_.model_version.name if round_ and round_.model_version else None,
            "models_used": sorted({r.model_name for r in members if r.model_name}),
            "n": len(members),
            "groups": out_groups,
        }

    entries = [round_entry(r) for r in rounds]
    if by_round.get(None):
        entries.append(round_entry(None))
    return {
        "project": {"id": project.pk, "name": project.name, "idle_threshold_s": project.idle_threshold_s},
        "filters": filters,
        "baseline_round": baseline.number if baseline else None,
        "rounds": entries,
    }


def options(rows: list[TargetTiming], usernames: dict[int, str]) -> dict:
    """The values the report can be filtered by."""
    return {
        "modalities": sorted({r.modality for r in rows}),
        "labels": sorted({r.label for r in rows}),
        "annotators": sorted(
            ({"id": u, "username": usernames.get(u, "")} for u in {r.submitted_by_id for r in rows} if u),
            key=lambda a: a["username"],
        ),
    }


CSV_COLUMNS = [
    "round",
    "manual_baseline",
    "model_version",
    "models_used",
    "modality",
    "label",
    "unit",
    "annotator",
    "n",
    "median_s",
    "mean_s",
    "q1_s",
    "q3_s",
    "iqr_s",
    "reduction_pct",
    "reduction_median_pct",
    "edit_fraction",
    "dice_median",
    "dice_mean",
    "dice_q1",
    "dice_q3",
    "hd95_median_mm",
    "prompting_mean_s",
    "waiting_mean_s",
    "correcting_mean_s",
    "reviewing_mean_s",
]


def csv_rows(report: dict) -> list[dict]:
    """One row per round and group (annotator "all"), then one per annotator of that group."""
    out = []
    for entry in report["rounds"]:
        for g in entry["groups"]:
            common = {
                "round": entry["number"] if entry["number"] is not None else "",
                "manual_baseline": entry["is_manual_baseline"],
                "model_version": entry["model_version"] or "",
                "models_used": " ".join(entry["models_used"]),
                "modality": g["modality"],
                "label": g["label"],
                "unit": g["unit"],
            }
            whole = {
                **common,
                "annotator": "all",
                **_stat_columns(g),
                "reduction_pct": g["reduction_pct"],
                "reduction_median_pct": g["reduction_median_pct"],
                "hd95_median_mm": g["hd95_mm"]["median"],
                **{f"{p}_mean_s": g["phases_mean_s"][p] for p in PHASES},
            }
            out.append(whole)
            for a in g["annotators"]:
                out.append({**common, "annotator": a["username"] or a["user"] or "", **_stat_columns(a)})
    return out


def _stat_columns(g: dict) -> dict:
    t, d = g["time_s"], g["dice"]
    return {
        "n": g["n"],
        "median_s": t["median"],
        "mean_s": t["mean"],
        "q1_s": t["q1"],
        "q3_s": t["q3"],
        "iqr_s": t["iqr"],
        "edit_fraction": g["edit_fraction"],
        "dice_median": d["median"],
        "dice_mean": d["mean"],
        "dice_q1": d["q1"],
        "dice_q3": d["q3"],
    }
