"""``bcdi-dl batch CONFIG.yaml --out DIR``: every scan of a config on Dask, resumable, with a summary.

Default: an embedded ``distributed.LocalCluster`` (``--workers N`` processes, one thread each);
``--scheduler tcp://host:port`` joins a running Dask cluster (docs/batch.md has a ``dask-jobqueue`` SLURM
example). DIR gets one folder per scan (reconstruction, strain, exports, ``provenance.yaml``, ``log.txt``),
``summary.csv`` and ``summary.html``, rewritten as scans finish. A rerun skips the finished scans and redoes
the rest. ``--watch`` keeps polling the config's files and globs and processes each new scan once its file
is complete. Exit status 0 when every scan is done, 1 when any failed, 2 for a bad config, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    """Add the ``batch`` subcommand."""
    p = subparsers.add_parser(
        "batch",
        help="run every scan of a pipeline config on Dask (local or a cluster), resumable, with a summary",
        description="Run the pipeline of CONFIG.yaml on each of its scans in parallel with Dask distributed. "
                    "Results in DIR/<scan>/, summary in DIR/summary.csv and DIR/summary.html. "
                    "Config keys: docs/batch.md.",
    )
    p.add_argument("config", metavar="CONFIG.yaml", help="pipeline configuration listing the scans")
    p.add_argument("--out", required=True, metavar="DIR", help="batch folder (created)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes of the embedded cluster (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="join this Dask scheduler (tcp://host:port)")
    p.add_argument("--retries", type=int, default=2, metavar="N",
                   help="retries of a scan whose task raised an unexpected error (default 2)")
    w = p.add_argument_group("live processing")
    w.add_argument("--watch", action="store_true", help="keep processing new scans as they are written")
    w.add_argument("--poll", type=float, default=5.0, metavar="S", help="seconds between polls (default 5)")
    w.add_argument("--watch-timeout", type=float, default=None, metavar="S",
                   help="stop watching after S seconds without a new scan (default: until Ctrl-C)")
    w.add_argument("--max-scans", type=int, default=None, metavar="N", help="stop watching after N scans")
    p.add_argument("--quiet", action="store_true", help="only failures and the final line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the config, run the batch, print the summary line; 1 if any scan failed."""
    from ..core.errors import BCDIError
    from ..pipeline.batch import run_batch
    from ..pipeline.config import load_config
    from ..pipeline.reporting import BatchReporter

    if args.workers is not None and args.workers < 1:
        raise BCDIError(f"--workers must be at least 1, got {args.workers}")
    if args.poll <= 0:
        raise BCDIError(f"--poll must be positive, got {args.poll}")
    cfg = load_config(args.config)
    if args.scheduler and args.workers is not None:
        print("bcdi-dl batch: note: --workers sizes the embedded cluster; ignored with --scheduler", file=sys.stderr)
    reporter = BatchReporter(sys.stderr, quiet=args.quiet)
    try:
        result = run_batch(cfg, args.out, workers=args.workers, scheduler=args.scheduler, watch=args.watch,
                           poll_s=args.poll, watch_timeout=args.watch_timeout, max_scans=args.max_scans,
                           retries=args.retries, on_event=reporter)
    finally:
        reporter.close()
    print(f"bcdi-dl batch: {len(result.done)} done, {len(result.failed)} failed -> "
          f"{result.out_dir / 'summary.html'}", file=sys.stdout)
    for row in result.failed:
        print(f"bcdi-dl batch: {row.get('scan')}: failed: {row.get('error')}", file=sys.stderr)
    return 1 if result.failed else 0
