"""``python -m medsam2``: the command line (see medsam2.cli)."""

from medsam2.cli import main

raise SystemExit(main())
