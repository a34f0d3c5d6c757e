"""``bcdi-dl phase IN --out OUT.{npz,cxi}``: phase retrieval of a diffraction pattern.

``--method conventional`` (default): N runs of an ER/HIO/RAAR recipe with shrink-wrap
(:func:`napari_bcdi_dl.core.phasing.phase`), best run by free log-likelihood, modes of the runs.
``--method dl``: the network's guesses (the best ``--candidates`` input flips) each refined by a recipe
(``--refine``: a name such as ``paper`` (border-only ER, as published) or a recipe string such as
``"HIO**200, ER**200"``), the best by free log-likelihood (``napari_bcdi_dl.models.dl_phasing.dl_phase``,
imported only when asked for). The recipe actually run (with any inserted ``DETWIN`` step) is printed.

OUT.npz holds ``obj`` (complex64, the data's shape, crystal centred), ``support`` (uint8), ``llk``,
``llk_free``, ``method`` (and history/meta as JSON); OUT.cxi uses PyNX's result layout. The mask is the union
of the one stored with IN (if any) and ``--mask``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..core.errors import BCDIError
from ._progress import progress_bar

METHODS = ("conventional", "dl")
OUT_SUFFIXES = (".npz", ".cxi")


def register(subparsers) -> None:
    """Add the ``phase`` subcommand."""
    from ..core.phasing.recipe import DEFAULT_RECIPE

    p = subparsers.add_parser(
        "phase",
        help="phase retrieval: diffraction pattern -> complex object (.npz or .cxi)",
        description=(
            "Phase retrieval of a 3D Bragg CDI pattern. 'conventional': N runs of ER/HIO/RAAR with shrink-wrap "
            "from random starts, the best by free log-likelihood. 'dl': the phase predicted by the network, "
            "refined by error reduction with border-only support updates."
        ),
    )
    p.add_argument(
        "input", metavar="IN", help="diffraction data (.npy, .npz, .tif, .cxi, .edf/.tif folder, BLISS .h5)"
    )
    p.add_argument("--out", required=True, metavar="OUT", help="output reconstruction, .npz or .cxi")
    p.add_argument(
        "--method", choices=METHODS, default="conventional", help="phasing method (default: conventional)"
    )
    p.add_argument(
        "--mask", metavar="M", help="gap / bad-voxel mask file (1 = invalid), added to IN's own mask"
    )
    p.add_argument("--scan", help="scan of a BLISS file (e.g. 1.1)")
    p.add_argument("--detector", help="detector of a BLISS file")
    c = p.add_argument_group("conventional")
    c.add_argument(
        "--recipe",
        default=DEFAULT_RECIPE,
        metavar="STR",
        help=f'algorithm recipe (default "{DEFAULT_RECIPE}"; e.g. "sup=50, HIO(0.7)**400, ER**100")',
    )
    c.add_argument(
        "--runs", type=int, default=1, metavar="N", help="independent runs from random starts (default 1)"
    )
    c.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    c.add_argument(
        "--support-threshold",
        type=float,
        default=0.1,
        metavar="T",
        help="shrink-wrap threshold, relative to the --support-method of the smoothed modulus (default 0.1)",
    )
    c.add_argument(
        "--support-method",
        choices=("max", "rms", "average"),
        default="max",
        help="what the threshold is relative to, inside the support (default max; PyNX's default is rms 0.25)",
    )
    c.add_argument(
        "--select",
        choices=("llk_free", "llk", "sharpness"),
        default="llk_free",
        help="criterion of the best run (default llk_free)",
    )
    c.add_argument(
        "--backend",
        choices=("auto", "numpy", "cupy"),
        default="auto",
        help="array backend (default auto: CuPy with a GPU, else numpy)",
    )
    d = p.add_argument_group("dl")
    d.add_argument(
        "--refine",
        default=None,
        metavar="RECIPE",
        help='refinement of the DL guesses: paper (border-only ER**400), hio-er (HIO**200, ER**200), raar-er, '
        'or a recipe string such as "HIO**200, ER**200" (default: hio-er)',
    )
    d.add_argument(
        "--candidates",
        type=int,
        default=None,
        metavar="N",
        help="predicted candidates (input flips) refined; the best by free LLK is kept (default 4, max 8)",
    )
    d.add_argument(
        "--refine-iter",
        type=int,
        default=None,
        metavar="N",
        help="shorthand for --refine \"border=on, ER**N\" (the published refinement; 0: unrefined)",
    )
    p.set_defaults(func=run)


def _check_out(path: str, protect: list) -> Path:
    from ..core.io.atomic import check_output_path

    out = Path(path)
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise BCDIError(
            f"--out {out}: write a reconstruction as .npz or .cxi (got '{out.suffix or 'no suffix'}')"
        )
    return check_output_path(out, protect)


def _load(args: argparse.Namespace):
    from ..core.io import read, read_mask

    loaded = read(args.input, scan=args.scan, detector=args.detector)
    if loaded.kind != "intensity":
        raise BCDIError(
            f"{args.input} holds a reconstruction ({loaded.kind}), not a diffraction pattern: give the data"
        )
    intensity = np.asarray(loaded.data)
    mask = None if loaded.mask is None else (np.asarray(loaded.mask) != 0)
    if args.mask:
        extra = read_mask(args.mask, intensity.shape) != 0
        mask = extra if mask is None else (mask | extra)
    return loaded, intensity, (None if mask is None else mask.astype(np.uint8))


def _dl_phase(intensity, mask, args, progress, cancel=None):
    """The DL route, imported lazily (TensorFlow is never imported otherwise)."""
    try:
        from ..models.dl_phasing import dl_phase
    except ModuleNotFoundError as err:
        if err.name and err.name.endswith("dl_phasing"):
            raise BCDIError("DL phasing is not available in this build: use --method conventional") from None
        raise
    return dl_phase(intensity, mask, refine=args.refine, refine_iter=args.refine_iter,
                    candidates=args.candidates, seed=args.seed, progress=progress, cancel=cancel)


def _check_dl_args(args: argparse.Namespace) -> None:
    """One-line errors for the DL options, before any file is read."""
    if args.refine_iter is not None and args.refine_iter < 0:
        raise BCDIError(f"--refine-iter must be >= 0, got {args.refine_iter}")
    if args.refine is not None and args.refine_iter is not None:
        raise BCDIError("give --refine or --refine-iter, not both")
    if args.candidates is not None and not 1 <= args.candidates <= 8:
        raise BCDIError(f"--candidates must be 1 to 8 (the input flips tried), got {args.candidates}")
    if args.refine is not None:
        from ..core.phasing.refine import refine_steps

        refine_steps(args.refine)


def run(args: argparse.Namespace) -> int:
    """Read, phase, write; print a one-line summary."""
    protect = [args.input] + ([args.mask] if args.mask else [])
    out = _check_out(args.out, protect)
    if args.runs < 1:
        raise BCDIError(f"--runs must be at least 1, got {args.runs}")
    if args.method == "dl":
        _check_dl_args(args)
    else:
        from ..core.phasing import parse_recipe

        parse_recipe(args.recipe)  # a bad recipe fails before the data are read
    loaded, intensity, mask = _load(args)
    if args.method == "dl":
        with progress_bar("dl phasing") as progress:
            rec = _dl_phase(intensity, mask, args, progress)
        ran = rec.meta.get("recipe") or "none (unrefined)"
        print(f"bcdi-dl phase: refinement run: {ran}")
        cands = rec.meta.get("candidates") or []
        summary = f"method dl, candidate {rec.meta.get('chosen_candidate', 0) + 1}/{max(1, len(cands))}, " \
                  f"{rec.meta.get('iterations', 0)} iterations"
    else:
        from ..core.phasing import phase

        with progress_bar("phasing") as progress:
            result = phase(
                intensity,
                mask,
                recipe=args.recipe,
                runs=args.runs,
                seed=args.seed,
                support_threshold=args.support_threshold,
                support_method=args.support_method,
                select=args.select,
                backend=args.backend,
                progress=progress,
            )
        rec = result.best
        print(f"bcdi-dl phase: recipe run: {rec.meta.get('recipe', args.recipe)}")
        summary = f"best run {result.best_index + 1}/{len(result.runs)}"
        if len(result.runs) > 1:
            summary += f", first-mode weight {result.first_mode_weight:.3f}"
    from ..core.io import write_reconstruction

    path = write_reconstruction(out, rec, loaded.geometry, protect=protect)
    llk = "n/a" if rec.llk is None else f"{rec.llk:.4g}"
    llk_free = "n/a" if rec.llk_free is None else f"{rec.llk_free:.4g}"
    print(
        f"bcdi-dl phase: {summary}, LLK {llk}, free LLK {llk_free}, "
        f"support {int(np.count_nonzero(rec.support))} voxels -> {path}"
    )
    return 0
