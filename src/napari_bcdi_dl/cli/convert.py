"""``bcdi-dl convert IN OUT``: any supported input to ``.npz`` or ``.cxi`` (PyNX layout).

An intensity becomes a PyNX CXI data file (``.cxi``) or an npz with ``data``/``mask``; a reconstruction
becomes a PyNX result file or an npz with ``obj``/``support``. The output is written atomically and never
over the input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import BCDIError


def _roi(text: str) -> tuple[int, int, int, int]:
    try:
        values = tuple(int(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"ROI '{text}' must be four integers: row0,row1,col0,col1") from None
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"ROI '{text}' must be four integers: row0,row1,col0,col1")
    return values  # type: ignore[return-value]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert any supported input to .npz or .cxi (PyNX layout)",
        description="Convert a BCDI scan or reconstruction to .npz or PyNX .cxi.",
    )
    p.add_argument("input", help="npy, npz, tif, folder of frames, CXI (data or result) or BLISS master file")
    p.add_argument("output", help="output file, .npz or .cxi")
    p.add_argument("--scan", help="BLISS scan (e.g. 12 or 12.1); needed when the file holds several")
    p.add_argument("--detector", help="BLISS detector under measurement/ (e.g. mpx1x4)")
    p.add_argument("--roi", type=_roi, help="detector region to keep: row0,row1,col0,col1")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int | None:
    from ..core import io

    out = Path(args.output)
    if out.suffix.lower() not in (".npz", ".cxi"):
        raise BCDIError(f"output {out} must end in .npz or .cxi")
    src = Path(args.input)
    if out.exists() and src.exists() and out.resolve() == src.resolve():
        raise BCDIError(f"output {out} is the input file: choose another output name")
    loaded = io.read(src, scan=args.scan, detector=args.detector, roi=args.roi)
    if loaded.kind == "object":
        written = io.write_reconstruction(out, io.reconstruction_from(loaded), loaded.geometry, protect=[src])
        what = "reconstruction"
    else:
        written = io.write_intensity(out, loaded.data, loaded.mask, loaded.geometry, protect=[src])
        what = "intensity" + (" + mask" if loaded.mask is not None else "")
    print(f"wrote {written} ({what}, shape {tuple(loaded.data.shape)})", file=sys.stdout)
    return 0
