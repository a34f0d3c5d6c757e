"""``bcdi-dl run CONFIG.yaml [--out DIR]``: one scan through the configured pipeline, into one folder.

CONFIG is a pipeline configuration (docs/batch.md) listing one scan, or the ``provenance.yaml`` sidecar of
an earlier run, which reproduces that run's arrays. DIR (default: ``./<scan name>``) receives the
reconstruction, the strain, the exports, ``provenance.yaml``, ``log.txt`` and ``done.json``; it is written
in a temporary folder and renamed when complete, replacing an earlier result folder of the same name.
A bad configuration fails in one line before anything is read. ``bcdi-dl run --defaults`` prints every key
with its default, a template to start from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import BCDIError


def register(subparsers) -> None:
    """Add the ``run`` subcommand."""
    p = subparsers.add_parser(
        "run",
        help="run one scan through a pipeline config (or an earlier run's provenance.yaml)",
        description="Run the pipeline of CONFIG.yaml (read, mask, inpaint, phase, strain, export) on its "
                    "one scan. Give a run's provenance.yaml to reproduce it. Config keys: docs/batch.md.",
    )
    p.add_argument("config", metavar="CONFIG.yaml", nargs="?",
                   help="pipeline configuration or provenance.yaml sidecar")
    p.add_argument("--out", metavar="DIR", help="result folder (default: ./<scan name>)")
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.add_argument("--defaults", action="store_true",
                   help="print every key of a configuration with its default (a template) and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load and check the config, run its scan into the result folder, print a one-line summary."""
    from ..pipeline.config import load_config
    from ..pipeline.folder import check_replaceable, process_scan
    from ..pipeline.reporting import step_progress
    from ..pipeline.scans import expand_scans

    if args.defaults:
        from ..pipeline.config import config_from_dict, dump_yaml

        print("# napari-bcdi-dl pipeline configuration: every key with its default (docs/batch.md)")
        print("# scans: a list of paths or globs (\"raw/*.npz\"), or of mappings"
              " {file: ..., scans: [12, 13], detector: ..., mask: ..., name: ...} (BLISS scans, a mask, a name)")
        print(dump_yaml(config_from_dict({}).resolved()), end="")
        return 0
    if not args.config:
        raise BCDIError("give the configuration file (CONFIG.yaml), or --defaults for a template")
    cfg = load_config(args.config)
    out_parent = Path(args.out).resolve().parent if args.out else Path.cwd()
    items = expand_scans(cfg, exclude=[Path(args.out).resolve()] if args.out else [])
    if len(items) != 1:
        what = "no scan" if not items else f"{len(items)} scans"
        raise BCDIError(f"{args.config} lists {what}; 'bcdi-dl run' takes one scan: use 'bcdi-dl batch' for "
                        "several")
    item = items[0]
    final = Path(args.out).resolve() if args.out else out_parent / item.name
    if not final.parent.is_dir():
        raise BCDIError(f"--out {final}: its folder {final.parent} does not exist; create it first")
    check_replaceable(final, [item.path] + ([item.mask] if item.mask else []))
    with step_progress(f"run {item.name}", quiet=args.quiet) as progress:
        row = process_scan(cfg, item, final, replace=True, progress=progress)
    if row["status"] != "done":
        raise BCDIError(f"{item.label()}: {row['error']} (log: {final / 'log.txt'})")
    llk = "n/a" if row.get("llk") is None else f"{row['llk']:.4g}"
    llk_free = "n/a" if row.get("llk_free") is None else f"{row['llk_free']:.4g}"
    print(f"bcdi-dl run: {item.name}: {row['method']}, LLK {llk}, free LLK {llk_free}, "
          f"{row.get('total_s', 0):.1f} s -> {final}", file=sys.stdout)
    return 0
