"""``bcdi-dl strain RESULT --out OUT.npz``: a reconstruction to modulus, phase, displacement and strain.

Reads any reconstruction :func:`napari_bcdi_dl.core.io.read` understands (``bcdi-dl phase`` npz/cxi, PyNX
results), completes its geometry with the options given, runs :func:`napari_bcdi_dl.core.postprocess.postprocess`
and writes OUT.npz atomically and compressed (:func:`napari_bcdi_dl.core.export.export_npz_cdiutils`) with
the cdiutils-like keys ``amplitude``, ``phase``, ``displacement``, ``het_strain`` (float32; phase,
displacement and strain NaN outside the support), ``support`` (uint8), ``voxel_size`` (nm, z y x), plus
``g_direction``, ``g_norm`` (1/nm, NaN if unknown), ``frame`` (``lab``, ``detector`` or ``array``), ``twin``,
``ramp``, ``offset`` and ``meta_json`` (the provenance: input, method, recipe, LLK, geometry, history).

The geometry cannot be silently wrong: a partial setup (say ``--energy`` alone, or a file that carries only
some of energy, distance, pixel size and rocking step) is refused in one line naming what is missing
(:func:`napari_bcdi_dl.core.geometry_checks.check_geometry`; with a partial geometry in the file only,
``--voxel-size`` chooses voxel units instead), and detector angles whose 2θ disagrees with the 2θ of
``--hkl``, the energy and ``--lattice`` give a warning with both values. Assumptions made on the way are
printed as notes on stderr. :func:`add_geometry_arguments` and :func:`resolve_geometry` are shared with
``bcdi-dl report``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ..core.errors import BCDIError
from ..core.types import Geometry

#: how the command line names the geometry values in its messages
CLI_LABELS = {"energy_kev": "--energy", "distance_m": "--distance", "pixel_size_m": "--pixel",
              "rocking_step_deg": "--rocking-step", "hkl": "--hkl", "lattice_nm": "--lattice", "delta": "--delta",
              "nu": "--nu"}


def register(subparsers) -> None:
    """Add the ``strain`` subcommand."""
    p = subparsers.add_parser(
        "strain",
        help="reconstruction -> modulus, phase, displacement and strain (.npz)",
        description=(
            "Post-process a reconstruction: phase unwrapping, ramp and offset removal, displacement u = phi/|G| "
            "and strain du/dG. With the energy, detector distance, pixel size and rocking step (and the "
            "angles, or --hkl/--lattice for the symmetric Bragg geometry) the result is put on an orthogonal "
            "lab grid in nm (ID01 geometry); without them it stays in voxel units with G along axis 0."
        ),
    )
    p.add_argument("result", metavar="RESULT", help="reconstruction file (.npz with obj/support, .cxi, .h5)")
    p.add_argument("--out", required=True, metavar="OUT.npz", help="output .npz file")
    add_geometry_arguments(p)
    o = p.add_argument_group("processing")
    o.add_argument(
        "--frame", choices=("lab", "detector"), default=None,
        help="output grid when the geometry is known (default: lab, orthogonalised)",
    )
    o.add_argument("--lab-voxel", type=float, metavar="nm", help="voxel of the lab grid (default: finest detector voxel)")
    o.add_argument("--offset", choices=("mean", "com", "none"), default=None,
                   help="phase offset removal (default mean)")
    o.add_argument("--no-unwrap", action="store_true", help="do not unwrap the phase")
    o.add_argument("--keep-ramp", action="store_true", help="do not remove the linear phase ramp")
    o.add_argument("--flip", action="store_true", help="take the twin of the reconstruction")
    o.add_argument("--isosurface", type=float, metavar="F", help="keep support voxels with |rho| >= F max (e.g. 0.3)")
    o.add_argument("--crop", type=int, metavar="N", help="crop to the support plus N voxels")
    o.add_argument("--phase-sign", type=int, choices=(1, -1), default=None, help="-1 when the phase is -G.u")
    p.set_defaults(func=run)


def add_geometry_arguments(p: argparse.ArgumentParser) -> None:
    """The geometry options (energy, distance, pixel, rocking step, angles, hkl, lattice, voxel size)."""
    g = p.add_argument_group("geometry (overrides what RESULT holds; all of energy, distance, pixel and rocking "
                             "step, or none)")
    g.add_argument("--energy", type=float, metavar="keV", help="X-ray energy in keV")
    g.add_argument("--distance", type=float, metavar="m", help="sample-detector distance in m")
    g.add_argument("--pixel", type=float, nargs="+", metavar="m", help="pixel size in m (one value, or rows cols)")
    g.add_argument("--rocking-step", type=float, metavar="deg", help="rocking-curve step in degrees")
    g.add_argument("--rocking-motor", choices=("eta", "phi"), help="rocking motor (default: from RESULT, else eta)")
    for name in ("delta", "nu", "eta", "phi"):
        g.add_argument(f"--{name}", type=float, metavar="deg", help=f"diffractometer {name} in degrees")
    g.add_argument("--hkl", type=int, nargs=3, metavar=("H", "K", "L"), help="Bragg reflection")
    g.add_argument("--lattice", type=float, metavar="nm", help="cubic lattice parameter in nm (Au: 0.4078)")
    g.add_argument("--voxel-size", type=float, nargs="+", metavar="nm", help="voxel size when no geometry is given")


def resolve_geometry(base: Geometry | None, args: argparse.Namespace, shape) -> tuple:
    """The geometry to post-process with, from RESULT's and the options; refuses a partial one.

    Returns
    -------
    (geometry, voxel size or None, notes, warnings): post-process with the geometry when its setup is known
    (``core.geometry_checks.setup_known``), else with the voxel size (or voxel units) and its hkl/lattice.
    """
    from ..core.geometry_checks import geometry_for_strain

    geom = _geometry(base or Geometry(), args)
    voxel = None
    if args.voxel_size is not None:
        if len(args.voxel_size) not in (1, 3):
            raise BCDIError(f"--voxel-size takes one or three values (z y x) in nm, got {len(args.voxel_size)}")
        voxel = tuple(args.voxel_size) * (3 if len(args.voxel_size) == 1 else 1)
    given = any(getattr(args, a) is not None for a in ("energy", "distance", "pixel", "rocking_step"))
    geom, notes, warnings = geometry_for_strain(geom, voxel, shape, setup_given=given, labels=CLI_LABELS,
                                                voxel_label="--voxel-size", source=str(args.result))
    return geom, voxel, notes, warnings


def _geometry(base: Geometry, args: argparse.Namespace) -> Geometry:
    """The file's geometry with the command-line values on top."""
    geom = dataclasses.replace(base, angles_deg=dict(base.angles_deg or {}))
    if args.energy is not None:
        geom.energy_kev = args.energy
    if args.distance is not None:
        geom.distance_m = args.distance
    if args.pixel is not None:
        if len(args.pixel) not in (1, 2):
            raise BCDIError(f"--pixel takes one or two values (rows cols) in m, got {len(args.pixel)}")
        geom.pixel_size_m = (args.pixel[0], args.pixel[-1])
    if args.rocking_step is not None:
        geom.rocking_step_deg = args.rocking_step
    if args.rocking_motor is not None:
        geom.rocking_motor = args.rocking_motor
    for name in ("delta", "nu", "eta", "phi"):
        value = getattr(args, name)
        if value is not None:
            geom.angles_deg[name] = value
    if args.hkl is not None:
        geom.hkl = tuple(args.hkl)
    if args.lattice is not None:
        geom.lattice_nm = args.lattice
    return geom


def provenance(rec, geometry: Geometry | None, source: str) -> dict:
    """What the strain file and the report say of where a result comes from."""
    from ..core.report import default_provenance

    prov = default_provenance(source=source, method=rec.method, recipe=(rec.meta or {}).get("recipe"),
                              geometry=geometry, llk=rec.llk, llk_free=rec.llk_free)
    prov["history"] = list(rec.history or [])
    return prov


def config_of(args: argparse.Namespace):
    """The pipeline configuration of the processing options (unset ones take the configuration's defaults,
    as ``bcdi-dl run`` and the Results dock)."""
    from ..pipeline.steps import step_config

    return step_config("bcdi-dl strain", strain={
        "frame": args.frame, "lab_voxel_nm": args.lab_voxel, "offset": args.offset,
        "unwrap": False if args.no_unwrap else None, "remove_ramp": False if args.keep_ramp else None,
        "flip": True if args.flip else None, "isosurface": args.isosurface, "crop": args.crop,
        "phase_sign": args.phase_sign})


def run(args: argparse.Namespace) -> int:
    """Read RESULT, post-process, write OUT.npz."""
    from ..core.export import export_npz_cdiutils
    from ..core.io import read, reconstruction_from
    from ..pipeline.steps import strain_step
    from ._progress import progress_bar

    if not str(args.out).lower().endswith(".npz"):
        raise BCDIError(f"--out {args.out}: the output is an .npz file, give a name ending in .npz")
    loaded = read(args.result)
    if loaded.kind != "object":
        raise BCDIError(
            f"{args.result} holds a diffraction pattern, not a reconstruction: run 'bcdi-dl phase' on it first"
        )
    geom, voxel, notes, warnings = resolve_geometry(loaded.geometry, args, loaded.data.shape)
    for w in warnings:
        print(f"bcdi-dl strain: warning: {w}", file=sys.stderr)
    cfg = config_of(args)
    with progress_bar("strain") as bar:
        result = strain_step(cfg, loaded.data, loaded.support, geom, voxel_size_nm=voxel, progress=bar)
    rec = reconstruction_from(loaded)
    out = export_npz_cdiutils(args.out, result, protect=[args.result],
                              provenance=provenance(rec, geom, str(args.result)))
    for note in notes + result.notes:
        print(f"bcdi-dl strain: note: {note}", file=sys.stderr)
    vs = ", ".join(f"{v:.3g}" for v in result.voxel_size)
    print(f"{out}: {result.frame} frame, voxel ({vs}) nm, {int(result.support.sum())} voxels in the support")
    return 0
