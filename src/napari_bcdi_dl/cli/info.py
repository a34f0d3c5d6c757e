"""``bcdi-dl info FILE``: what a BCDI file holds (shape, dtype, counts, centre of mass, detector gaps)."""

from __future__ import annotations

import argparse

import numpy as np


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
        help="describe a BCDI file: shape, dtype, max, total counts, centre of mass, detector gaps",
        description="Describe a BCDI scan or reconstruction (any format bcdi-dl reads).",
    )
    p.add_argument("file", help="npy, npz, tif, folder of frames, CXI (data or result) or BLISS master file")
    p.add_argument("--scan", help="BLISS scan (e.g. 12 or 12.1); needed when the file holds several")
    p.add_argument("--detector", help="BLISS detector under measurement/ (e.g. mpx1x4)")
    p.set_defaults(func=run)


def _fmt_geometry(g) -> list[str]:
    lines = []
    if g.energy_kev:
        lines.append(f"energy: {g.energy_kev:.4g} keV (wavelength {g.wavelength_nm:.5g} nm)")
    if g.distance_m:
        lines.append(f"detector distance: {g.distance_m:.4g} m")
    if g.pixel_size_m:
        lines.append(f"pixel size: {g.pixel_size_m[0] * 1e6:.4g} x {g.pixel_size_m[1] * 1e6:.4g} um")
    if g.beam_center:
        lines.append(f"beam centre (row, col): ({g.beam_center[0]:.1f}, {g.beam_center[1]:.1f})")
    if g.rocking_motor:
        step = f", step {g.rocking_step_deg:.5g} deg" if g.rocking_step_deg is not None else ""
        lines.append(f"rocking motor: {g.rocking_motor}{step}")
    if g.angles_deg:
        lines.append("angles (deg): " + ", ".join(f"{k}={v:.4f}" for k, v in g.angles_deg.items()))
    if g.detector:
        lines.append(f"detector: {g.detector}")
    if g.roi:
        lines.append(f"ROI: rows {g.roi[0]}:{g.roi[1]}, cols {g.roi[2]}:{g.roi[3]}")
    return lines


_AXES = {0: "frames (axis 0)", 1: "rows (axis 1)", 2: "cols (axis 2)"}


def describe(args: argparse.Namespace) -> list[str]:
    """The lines ``info`` prints (kept apart from printing for tests and the widgets)."""
    from ..core import io
    from ..core.masks import detect_gaps, gap_runs
    from ..core.reciprocal import centre_of_mass

    loaded = io.read(args.file, scan=args.scan, detector=args.detector)
    meta = loaded.meta
    data = loaded.data
    lines = [f"file: {loaded.source}"]
    fmt = meta.get("format", "?")
    if fmt == "bliss":
        lines.append(f"format: BLISS master file, scan {meta.get('scan')}, detector {meta.get('detector')}")
        scans = io.list_scans(args.file)
        if len(scans) > 1:
            shown = ", ".join(scans[:12]) + (" ..." if len(scans) > 12 else "")
            lines.append(f"scans in file: {len(scans)} ({shown})")
        if meta.get("title"):
            lines.append(f"title: {meta['title']}")
    else:
        lines.append(f"format: {fmt}")
    lines.append(f"kind: {loaded.kind}")
    lines.append(f"shape (z, y, x): {tuple(data.shape)}")
    stored = meta.get("stored_dtype")
    lines.append(
        f"dtype: {data.dtype}" + (f" (stored as {stored})" if stored and stored != str(data.dtype) else "")
    )
    if loaded.kind == "object":
        modulus = np.abs(data)
        lines.append(f"max modulus: {float(modulus.max()):.6g}")
        if loaded.support is not None:
            lines.append(f"support: {int(np.count_nonzero(loaded.support))} voxels")
        com = centre_of_mass(modulus)
        lines.append("centre of mass of the modulus (z, y, x): (" + ", ".join(f"{c:.2f}" for c in com) + ")")
        for key in ("method", "llk", "llk_free", "program", "n_modes", "voxel_size_nm"):
            if meta.get(key) is not None:
                lines.append(f"{key}: {meta[key]}")
        lines += _fmt_geometry(loaded.geometry)
        return lines
    lines.append(f"max: {float(data.max()):.6g}")
    lines.append(f"total counts: {float(data.sum(dtype=np.float64)):.6g}")
    com = centre_of_mass(data)
    lines.append("centre of mass (z, y, x): (" + ", ".join(f"{c:.2f}" for c in com) + ")")
    gaps = detect_gaps(data)
    runs = gap_runs(gaps)
    if runs:
        lines.append(f"detected gap planes: {len(runs)}")
        for axis, start, stop in runs:
            lines.append(f"  {_AXES.get(axis, axis)} {start}:{stop} ({stop - start} wide)")
    else:
        lines.append("detected gap planes: none")
    if loaded.mask is not None:
        n = int(np.count_nonzero(loaded.mask))
        lines.append(f"mask in file: {n} masked voxels ({100.0 * n / loaded.mask.size:.2f} %)")
    from ..core.prepare import dead_pixel_maps

    dead, saturated = dead_pixel_maps(data, loaded.mask)
    dead &= ~gaps.all(axis=0).astype(bool)  # the gap planes above are not counted twice
    lines.append(f"dead pixels (zero in every frame, neighbours count): {int(dead.sum())}; "
                 f"saturated in every frame: {int(saturated.sum())}")
    if meta.get("invalid_pixels"):
        lines.append(
            f"invalid detector values ({meta['invalid_value']}) masked: {meta['invalid_pixels']} voxels"
        )
    lines += _fmt_geometry(loaded.geometry)
    return lines


def run(args: argparse.Namespace) -> int | None:
    for line in describe(args):
        print(line)
    return 0
