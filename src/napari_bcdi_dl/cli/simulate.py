"""``bcdi-dl simulate OUT.npz|OUT.cxi``: one simulated strained-crystal pattern and its ground truth.

``OUT`` holds the measured-like intensity (Poisson counts, gap voxels 0) and the gap mask, in the layout
every reader of the project (and PyNX for ``.cxi``) opens. The ground truth goes beside it, in
``OUT_truth.npz`` (or ``--truth``): ``obj`` (complex64, scaled so that ``|FT(obj)|² = expected``) and
``support`` (so that it opens as a reconstruction), ``expected`` (noise-free intensity),
``reciprocal_phase``, ``phase_field`` (unwrapped object phase) and ``params_json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from ..core.errors import BCDIError


def parse_phase_range(text: str) -> float:
    """``"3pi"``, ``"3π"``, ``"pi"`` or radians (``"9.42"``) -> radians."""
    t = str(text).strip().lower().replace("π", "pi").replace(" ", "")
    try:
        if t.endswith("pi"):
            factor = t[:-2].rstrip("*")
            return (float(factor) if factor else 1.0) * math.pi
        return float(t)
    except ValueError:
        raise BCDIError(
            f"phase range {text!r} not understood: give radians (9.42) or a multiple of pi (3pi)"
        ) from None


def parse_triple(text: str, name: str) -> tuple[float, float, float]:
    """``"3"`` or ``"3,2.5,4"`` (z, y, x) -> three floats."""
    try:
        values = [float(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise BCDIError(
            f"{name} {text!r} not understood: give one number or three, z,y,x (e.g. 3 or 3,2.5,4)"
        ) from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise BCDIError(f"{name} {text!r} needs one number or three (z,y,x), got {len(values)}")
    return tuple(values)  # type: ignore[return-value]


def parse_number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise BCDIError(f"{name} {text!r} is not a number") from None


# Kept literal so that building the CLI parser does not import scipy (tests check they match core.simulate).
SHAPES = ("wulff", "winterbottom", "cube_cuts", "hull")
FIELDS = ("gaussian_bumps", "cosines", "random", "interface", "screw")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="simulate a strained crystal's Bragg peak (intensity + gap mask) and its ground truth",
        description=(
            "Simulate one BCDI pattern of a strained crystal. OUT (.npz or .cxi) gets the noisy intensity "
            "and "
            "the gap mask; OUT_truth.npz the object, support, noise-free intensity and reciprocal phase."
        ),
    )
    p.add_argument("output", help="output file, .npz or .cxi")
    p.add_argument("--size", default="64", help="array size, one int (cube) or z,y,x (default 64)")
    p.add_argument(
        "--shape", default="wulff", choices=list(SHAPES) + ["random"], help="crystal shape (default wulff)"
    )
    p.add_argument(
        "--field", default="gaussian_bumps", choices=list(FIELDS), help="phase field (default gaussian_bumps)"
    )
    p.add_argument(
        "--phase-range", default="3pi", help="max-min of the phase in the crystal: 3pi, 3π or radians (0–6π)"
    )
    p.add_argument("--oversampling", default="3", help="oversampling ratio, one or z,y,x (≥ 2; default 3)")
    p.add_argument("--max-counts", default="1e6", help="photons at the maximum of the pattern (default 1e6)")
    p.add_argument(
        "--gap", default="none", help="none, line, cross, line:W or cross:W[,W2] (widths in pixels)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--no-noise", action="store_true", help="store the expected intensity, no Poisson noise")
    p.add_argument("--edge-sigma", default="0.6", help="edge smoothing of the crystal, voxels (default 0.6)")
    p.add_argument(
        "--density-noise", default="0", help="relative density fluctuation of the modulus (default 0)"
    )
    p.add_argument("--truth", help="ground-truth file (default OUT_truth.npz)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int | None:
    from ..core import io
    from ..core.simulate import simulate_pattern

    out = Path(args.output)
    if out.suffix.lower() not in (".npz", ".cxi"):
        raise BCDIError(f"output {out} must end in .npz or .cxi")
    truth = Path(args.truth) if args.truth else out.with_name(out.stem + "_truth.npz")
    if truth.suffix.lower() != ".npz":
        raise BCDIError(f"truth file {truth} must end in .npz")
    if truth.resolve() == out.resolve():
        raise BCDIError(f"truth file {truth} is the output file: choose another --truth")
    size_values = parse_triple(args.size, "size")
    if any(v != int(v) for v in size_values):
        raise BCDIError(f"size {args.size!r} must be whole numbers of voxels")
    size = tuple(int(v) for v in size_values)
    pattern = simulate_pattern(
        size,
        seed=args.seed,
        shape=args.shape,
        field=args.field,
        phase_range=parse_phase_range(args.phase_range),
        oversampling=parse_triple(args.oversampling, "oversampling"),
        max_counts=parse_number(args.max_counts, "max counts"),
        noise=not args.no_noise,
        gap=args.gap,
        edge_sigma=parse_number(args.edge_sigma, "edge sigma"),
        density_noise=parse_number(args.density_noise, "density noise"),
    )
    written = io.write_intensity(out, pattern.intensity, pattern.mask)
    io.write_npz(
        truth,
        obj=pattern.obj,
        support=pattern.support,
        expected=pattern.expected,
        reciprocal_phase=pattern.reciprocal_phase,
        phase_field=pattern.phase_field,
        params_json=np.str_(json.dumps(pattern.params)),
    )
    gap = pattern.params["gap"]
    gap_txt = (
        "no gap" if gap is None else f"{gap['kind']} gap " + "+".join(str(s[2]) for s in gap["slabs"]) + " px"
    )
    print(
        f"wrote {written} (shape {size}, max {pattern.intensity.max():.4g} counts, {gap_txt}) "
        f"and truth {truth} ({pattern.params['shape']}, {pattern.params['field']}, "
        f"phase range {pattern.params['phase_range'] / math.pi:.3g}π)",
        file=sys.stdout,
    )
    return 0
