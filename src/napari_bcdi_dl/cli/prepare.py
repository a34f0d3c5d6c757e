"""``bcdi-dl prepare IN --out OUT.{npz,cxi}``: a raw scan to a phasing-ready pattern.

Background and flat field (``--background``, ``--flat``), dead pixels (always), hot pixels
(``--hot-pixels``), detector module gaps (``--detector``, or the detector the file names), photon threshold
(``--threshold``), crop around the Bragg peak (``--crop Z Y X``; by default the largest FFT-friendly size;
``--no-crop``), binning (``--bin BZ BY BX``) and parasitic-signal masking (``--aliens auto``). Each step is
one line of the report and one record of the output's provenance. OUT holds the intensity, the mask and the
geometry (``bcdi-dl phase`` and ``inpaint`` read it as it is).
"""

from __future__ import annotations

import argparse
import sys
import time

from ..core.errors import BCDIError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prepare",
        help="crop, bin, detector corrections and alien masking: a raw scan to a phasing-ready pattern",
        description="Prepare a raw BCDI scan for phasing (see docs/prepare.md).",
    )
    p.add_argument("input", metavar="IN", help="scan: npy, npz, tif, folder of frames, CXI, BLISS, SPEC file")
    p.add_argument("--out", required=True, help="output .npz or .cxi")
    p.add_argument("--crop", nargs=3, type=int, metavar=("Z", "Y", "X"),
                   help="crop size around the Bragg peak (default: the largest FFT-friendly size)")
    p.add_argument("--no-crop", action="store_true", help="do not crop")
    p.add_argument("--centre", choices=("max", "com"), default="max",
                   help="the peak the crop centres: maximum or centre of mass (default max)")
    p.add_argument("--bin", nargs=3, type=int, metavar=("BZ", "BY", "BX"), help="integer binning factors")
    p.add_argument("--hot-pixels", action="store_true", help="mask hot pixels (in most frames)")
    p.add_argument("--no-dead-pixels", action="store_true", help="do not mask dead / saturated pixels")
    p.add_argument("--flat", metavar="F", help="flat-field frame (npy, npz, tif, edf): counts are divided by it")
    p.add_argument("--background", metavar="B", help="background / dark frame(s) subtracted from every frame")
    p.add_argument("--threshold", type=float, help="photon threshold: counts below become 0")
    p.add_argument("--detector", help="detector for the module gaps (maxipix, eiger2m, timepix, any pyFAI name)")
    p.add_argument("--aliens", choices=("auto", "off"), default="off",
                   help="mask parasitic scattering found by clustering (default off)")
    p.add_argument("--mask", metavar="M", help="extra mask file (1 = invalid), added to IN's own mask")
    p.add_argument("--scan", help="scan of a BLISS master or SPEC file")
    p.set_defaults(func=run)


def _line(record: dict) -> str:
    step, res, par = record.get("step"), record.get("result") or {}, record.get("params") or {}
    if step == "crop":
        return f"crop: peak {tuple(res['peak'])} -> shape {tuple(res['shape'])} (offset {tuple(res['offset'])})"
    if step == "bin":
        return f"bin {tuple(par['factors'])}: shape {tuple(res['shape'])}"
    if step == "hot_pixels":
        return f"hot pixels: {res['n_pixels']} masked"
    if step == "dead_pixels":
        return f"dead pixels: {res['n_dead']} masked, saturated pixels: {res['n_saturated']} masked"
    if step == "detector_gaps":
        if "skipped" in res:
            return f"detector gaps: skipped ({res['skipped']})"
        return f"detector gaps ({res['library']}): {res['gap_pixels']} pixels per frame"
    if step == "aliens":
        return (f"aliens: {len(res['accepted'])} of {res['n_clusters']} clusters masked, "
                f"{res['masked_voxels']} voxels")
    if step == "flat_field":
        return f"flat field: {res['masked_pixels']} pixels with no efficiency masked"
    if step == "background":
        return f"background subtracted (mean {res['mean_background']:.3g} counts per pixel)"
    if step == "photon_threshold":
        return f"photon threshold {par['threshold']:g}: {res['voxels_zeroed']} voxels set to 0"
    return f"{step}: {res}"


def run(args: argparse.Namespace) -> int | None:
    import numpy as np

    from ..core.io import read, read_mask
    from ..core.prepare import prepare, write_prepared
    from ._progress import progress_bar

    if args.crop is not None and args.no_crop:
        raise BCDIError("--crop and --no-crop exclude each other: choose one")
    from pathlib import Path

    from ..core.io.atomic import check_output_path

    suffix = Path(args.out).suffix.lower()
    if suffix not in (".npz", ".cxi"):  # before any work
        raise BCDIError(f"{args.out}: a prepared pattern is written as .npz or .cxi (got '{suffix or args.out}')")
    check_output_path(args.out, [args.input])
    t0 = time.perf_counter()
    loaded = read(args.input, scan=args.scan)
    if loaded.kind != "intensity":
        raise BCDIError(f"{args.input} holds a reconstruction, not an intensity: give the diffraction data")
    if args.mask:
        extra = read_mask(args.mask, loaded.data.shape)
        loaded.mask = extra if loaded.mask is None else ((loaded.mask != 0) | (extra != 0)).astype(np.uint8)
    with progress_bar("prepare") as bar:
        out = prepare(loaded, crop_size=args.crop, auto_crop=not args.no_crop, centre=args.centre,
                      bin_factors=args.bin, hot_pixels=args.hot_pixels, dead_pixels=not args.no_dead_pixels,
                      flat=args.flat, background=args.background, threshold=args.threshold,
                      detector=args.detector, aliens=args.aliens, progress=bar)
    for record in out.meta.get("provenance", []):
        print(_line(record))
    for note in loaded.meta.get("notes") or []:
        print(f"bcdi-dl prepare: note: {note}", file=sys.stderr)
    protect = [args.input] + ([args.mask] if args.mask else [])
    protect += [f for f in (args.flat, args.background) if f]
    path = write_prepared(args.out, out, protect=protect)
    n = 0 if out.mask is None else int(np.count_nonzero(out.mask))
    print(f"{path}: shape {tuple(out.data.shape)}, {n} masked voxels, in {time.perf_counter() - t0:.1f} s")
    return 0
