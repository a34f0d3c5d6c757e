"""``bcdi-dl dataset {inpaint,phase} OUTDIR``: simulated training sets, sharded, parallel, resumable.

Running the same command again on an interrupted folder finishes it (completed shards are kept); the
result does not depend on the number of workers nor on the interruptions.
"""

from __future__ import annotations

import argparse
import sys
import time


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "dataset",
        help="generate a simulated training set (inpaint: 32³ patches with gaps; phase: patterns + phase)",
        description=(
            "Generate a simulated training set as HDF5 shards + manifest.json in OUTDIR. Reproducible from "
            "--seed, parallel, and resumable: run the same command again to finish an interrupted run."
        ),
    )
    p.add_argument(
        "kind",
        choices=["inpaint", "phase", "defects"],
        help="inpaint: 32³ patches + gap masks; phase: patterns + reciprocal phase; defects: patterns "
        "labelled none/edge/screw/mixed dislocations (docs/defects.md)",
    )
    p.add_argument("outdir", help="output folder (created; an interrupted dataset there is resumed)")
    p.add_argument("--n", type=int, required=True, help="number of samples")
    p.add_argument("--size", type=int, default=64, help="pattern size 32, 64 or 128 (default 64)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--shard-size", type=int, default=None, help="samples per shard (default: ~64 MB shards)")
    p.add_argument(
        "--patches-per-pattern",
        type=int,
        default=None,
        help="inpaint: patches cropped per pattern (default 1, 4 at 128)",
    )
    p.add_argument(
        "--shapes",
        nargs="+",
        default=None,
        metavar="SHAPE",
        help="crystal shape families to draw from (default: wulff winterbottom cube_cuts hull; "
        "also: rounded)",
    )
    p.add_argument(
        "--low-strain-fraction",
        type=float,
        default=None,
        metavar="F",
        help="fraction of crystals with a phase range below 2π (default 0.2)",
    )
    p.add_argument(
        "--gap-through-peak",
        type=float,
        default=None,
        metavar="F",
        help="inpaint: fraction of patches placed so that their gap lies in the plane of the Bragg peak "
        "(default 0)",
    )
    for flag, kind, text in (
        ("--gap-peak-offset", int, "inpaint, with --gap-through-peak: put those patches' gaps beside the peak "
         "instead, their near edge LO–HI voxels from it (e.g. 2 14)"),
        ("--edge-sigma", float, "width range (voxels) of the crystals' smoothed edge (default 0.3 1.0; sharper "
         "edges, e.g. 0 0.3, keep the slow fall-off of the intensity of measured patterns)"),
        ("--phase-range-low", float, "phase range (rad) of the low-strain crystals (default 0 6.283; e.g. 0 1 "
         "for nearly unstrained crystals, whose Bragg peak is as sharp as it gets)"),
    ):
        p.add_argument(flag, type=kind, nargs=2, default=None, metavar=("LO", "HI"), help=text)
    p.add_argument("--g-axis", choices=("random", "z", "y", "x"), default="random",
                   help="defects: direction of the Bragg vector G in the array (default random, the shipped "
                   "set; z/y/x: G along that axis, as in a measured scan)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int | None:
    from ..core.simulate.datasets import generate_dataset
    from ._progress import progress_bar

    t0 = time.perf_counter()
    if args.kind == "defects":
        return _run_defects(args, t0)
    with progress_bar(f"{args.kind} dataset", disable=True if args.quiet else None) as bar:
        manifest = generate_dataset(
            args.kind,
            args.outdir,
            n=args.n,
            size=args.size,
            seed=args.seed,
            workers=args.workers,
            shard_size=args.shard_size,
            progress=bar,
            patches_per_pattern=args.patches_per_pattern,
            overrides=_overrides(args),
        )
    dt = time.perf_counter() - t0
    print(
        f"{args.outdir}: {manifest['n']} {args.kind} samples of size {manifest['size']} in "
        f"{manifest['n_shards']} shards, complete ({dt:.1f} s this run)",
        file=sys.stdout,
    )
    return 0


def _run_defects(args: argparse.Namespace, t0: float) -> int:
    """``bcdi-dl dataset defects``: labelled dislocation patterns (the range overrides do not apply)."""
    from ..core.errors import BCDIError
    from ..core.simulate.defects_dataset import generate_defects_dataset
    from ._progress import progress_bar

    if _overrides(args) or args.patches_per_pattern is not None:
        raise BCDIError("dataset defects takes no --shapes/--low-strain-fraction/--gap-through-peak/"
                        "--gap-peak-offset/--edge-sigma/--phase-range-low/--patches-per-pattern: its ranges are fixed (docs/defects.md)")
    with progress_bar("defects dataset", disable=True if args.quiet else None) as bar:
        manifest = generate_defects_dataset(args.outdir, n=args.n, size=args.size, seed=args.seed,
                                            workers=args.workers, shard_size=args.shard_size,
                                            progress=bar, g_direction=args.g_axis)
    print(f"{args.outdir}: {manifest['n']} defects samples of size {manifest['size']} in "
          f"{manifest['n_shards']} shards, complete ({time.perf_counter() - t0:.1f} s this run)")
    return 0


def _overrides(args: argparse.Namespace) -> dict | None:
    """The range overrides given on the command line (None when there are none)."""
    given = {
        "shapes": args.shapes,
        "low_strain_fraction": args.low_strain_fraction,
        "gap_through_peak_fraction": args.gap_through_peak,
        "edge_sigma": args.edge_sigma,
        "gap_peak_offset": args.gap_peak_offset,
        "phase_range_low": args.phase_range_low,
    }
    out = {k: v for k, v in given.items() if v is not None}
    return out or None
