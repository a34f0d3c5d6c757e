"""``bcdi-dl report RESULT --out report.png``: a one-page report of a reconstruction (PNG or PDF).

RESULT is either a reconstruction (``bcdi-dl phase`` npz/cxi, a PyNX result: post-processed here with the
geometry options of ``bcdi-dl strain``, the same partial-geometry refusal and angle warning) or a strain file
written by ``bcdi-dl strain`` or the Results dock (cdiutils-like keys ``amplitude``, ``het_strain``...; its
provenance and history are read from ``meta_json``). The page (:func:`napari_bcdi_dl.core.report.write_report`):
slices of modulus, phase and strain through the centre of mass, the isosurface coloured by strain, the strain
histogram with mean and std, the LLK history, the PRTF (with ``--data PATTERN``, the measured intensity the
reconstruction was phased from) and the provenance. Written atomically, never over an input.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

from ..core.errors import BCDIError
from .strain import add_geometry_arguments, provenance, resolve_geometry


def register(subparsers) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report",
        help="one-page PNG/PDF report of a reconstruction or a strain file",
        description=(
            "Draw one page: slices of modulus, phase and strain through the crystal's centre of mass, the "
            "isosurface coloured by strain, the strain histogram, the LLK history, the PRTF (with --data) and "
            "the provenance. RESULT is a reconstruction (post-processed here) or a strain .npz."
        ),
    )
    p.add_argument("result", metavar="RESULT", help="reconstruction (.npz, .cxi, .h5) or strain file (.npz)")
    p.add_argument("--out", required=True, metavar="OUT", help="output report, .png or .pdf")
    p.add_argument("--data", metavar="PATTERN", help="the measured intensity RESULT was phased from (for the PRTF)")
    p.add_argument("--field", choices=("strain", "displacement", "phase"), default="strain",
                   help="field colouring the isosurface (default strain)")
    p.add_argument("--threshold", type=float, default=0.3, metavar="F",
                   help="isosurface level, fraction of the maximum modulus (default 0.3)")
    add_geometry_arguments(p)
    p.set_defaults(func=run)


def is_strain_file(path: str | Path) -> bool:
    """True for an ``.npz`` holding cdiutils-like ``amplitude`` and ``het_strain`` (a post-processed result)."""
    p = Path(path)
    if p.suffix.lower() != ".npz" or not p.is_file():
        return False
    try:
        with zipfile.ZipFile(p) as z:
            names = set(z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
    return {"amplitude.npy", "het_strain.npy"} <= names


def _prtf(data_path: str, obj, voxel_size):
    from ..core import metrics
    from ..core.io import read

    loaded = read(data_path)
    if loaded.kind != "intensity":
        raise BCDIError(f"--data {data_path} holds a reconstruction, not a diffraction pattern: give the measured data")
    if loaded.data.shape != obj.shape:
        raise BCDIError(f"--data {data_path} has shape {loaded.data.shape}, the reconstruction {obj.shape}: give "
                        "the pattern it was phased from")
    return metrics.prtf(loaded.data, obj, loaded.mask, voxel_size=voxel_size)


def run(args: argparse.Namespace) -> int:
    """Read RESULT (post-process a reconstruction), draw the page, write OUT."""
    from ..core.report import FORMATS, write_report
    from ._progress import progress_bar

    out = Path(args.out)
    if out.suffix.lower() not in FORMATS:
        raise BCDIError(f"--out {args.out}: a report is a .png or .pdf file, give a name ending in .png or .pdf")
    if not 0 < args.threshold < 1:
        raise BCDIError(f"--threshold {args.threshold} must be a fraction of the maximum modulus in (0, 1)")
    protect = [args.result] + ([args.data] if args.data else [])
    notes: list = []
    prtf = None
    if is_strain_file(args.result):
        from ..core.export import read_npz_cdiutils

        result, prov = read_npz_cdiutils(args.result)
        history = prov.pop("history", None)
        prov.setdefault("input", str(args.result))
        if args.data:
            notes.append("the PRTF needs the complex object: give the reconstruction as RESULT, not its strain file")
    else:
        from ..core.geometry_checks import setup_known
        from ..core.io import read, reconstruction_from
        from ..core.postprocess import postprocess

        loaded = read(args.result)
        if loaded.kind != "object":
            raise BCDIError(f"{args.result} holds a diffraction pattern, not a reconstruction: run 'bcdi-dl phase' "
                            "on it first")
        geom, voxel, notes, warnings = resolve_geometry(loaded.geometry, args, loaded.data.shape)
        for w in warnings:
            print(f"bcdi-dl report: warning: {w}", file=sys.stderr)
        rec = reconstruction_from(loaded)
        with progress_bar("strain") as bar:
            result = postprocess(loaded.data, loaded.support, geom if setup_known(geom) else None, hkl=geom.hkl,
                                 lattice_nm=geom.lattice_nm, voxel_size_nm=voxel, progress=bar)
        prov = provenance(rec, geom, str(args.result))
        history = prov.pop("history", None)
        if args.data:
            prov["data"] = str(args.data)
            vs = loaded.meta.get("voxel_size_nm") or voxel
            prtf = _prtf(args.data, loaded.data, vs)
    prov.setdefault("title", Path(args.result).name)
    with progress_bar("report") as bar:
        path = write_report(out, result, history=history, prtf=prtf, provenance=prov, threshold=args.threshold,
                            field=args.field, protect=protect, progress=bar)
    for note in notes + list(result.notes):
        print(f"bcdi-dl report: note: {note}", file=sys.stderr)
    print(f"{path}: report of {Path(args.result).name} ({result.frame} frame, "
          f"{int(result.support.sum())} voxels in the support)")
    return 0
