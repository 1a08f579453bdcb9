"""Command line: ``python -m medsam2.training bootstrap --out medsam2/weights/``.

Other commands: ``evaluate`` scores a checkpoint on synthetic held-out CT lesions with the
key-slice box protocol.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from medsam2.training.bootstrap import WEIGHTS_DIR, BootstrapConfig


def _bool(text: str) -> bool:
    """``--flag true`` / ``--flag 0``: argparse's ``bool("false")`` would be True."""
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m medsam2.training", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bootstrap", help="train bootstrap_s from scratch on synthetic CT lesions")
    b.add_argument("--out", default=str(WEIGHTS_DIR), help="folder for bootstrap_s.pt and .json")
    b.add_argument("--work-dir", default=None, help="resumable run folder (default: per-seed temp folder)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    for f in fields(BootstrapConfig):
        kind = _bool if isinstance(f.default, bool) else type(f.default)
        b.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default)
    e = sub.add_parser("evaluate", help="Dice/NSD of a checkpoint on synthetic held-out CT lesions")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--config", default="bootstrap_s")
    e.add_argument("--cases", type=int, default=BootstrapConfig.val_cases)
    e.add_argument("--seed", type=int, default=10_000)
    e.add_argument("--tolerance-mm", type=float, default=2.0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "bootstrap":
            from medsam2.training.bootstrap import run_bootstrap

            cfg = BootstrapConfig(**{f.name: getattr(args, f.name) for f in fields(BootstrapConfig)})
            meta = run_bootstrap(args.out, cfg, work_dir=args.work_dir, show_progress=not args.quiet)
            print(json.dumps({k: meta[k] for k in ("config", "steps_done", "train_wall_seconds",
                                                   "train_cpu_seconds")} | {
                "mean_dice": meta["validation"]["mean_dice"], "mean_nsd_2mm": meta["validation"]["mean_nsd_2mm"]}))
        else:
            from medsam2.build import build_model
            from medsam2.training.bootstrap import synthetic_cases
            from medsam2.training.evaluate import evaluate

            model = build_model(args.config, checkpoint=args.checkpoint)
            scores = evaluate(model, synthetic_cases(args.seed, args.cases, 3, "val"), args.tolerance_mm,
                              show_progress=True)
            print(json.dumps({"mean_dice": scores.mean_dice, "mean_nsd": scores.mean_nsd,
                              "per_case": scores.per_case()}))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
