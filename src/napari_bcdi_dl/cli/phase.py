"""``bcdi-dl phase IN --out OUT.{npz,cxi}``: phase retrieval of a diffraction pattern.

``--method conventional`` (default): N runs of an ER/HIO/RAAR recipe with shrink-wrap
(:func:`napari_bcdi_dl.core.phasing.phase`), best run by free log-likelihood, modes of the runs.
``--method dl``: the network's guesses (the best ``--candidates`` input flips) each refined by a recipe
(``--refine``: a name such as ``paper`` (border-only ER, as published) or a recipe string such as
``"HIO**200, ER**200"``), the best by free log-likelihood (``napari_bcdi_dl.models.dl_phasing.dl_phase``,
imported only when asked for). The recipe actually run (with any inserted ``DETWIN`` step) is printed.

OUT.npz holds ``obj`` (complex64, the data's shape, crystal centred), ``support`` (uint8), ``llk``,
``llk_free``, ``method`` (and history/meta as JSON); OUT.cxi uses PyNX's result layout. The mask is the union
of the one stored with IN (if any) and ``--mask``. A file written by ``bcdi-dl inpaint`` (its ``inpainted``
key) has its gap filled: the gap stays free in the phasing and, with ``dl``, the fill is the network's input
(``pipeline.steps.phase_step(filled=True)``; measured in docs/models.md, "Inpainting in real space").
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
    from ..pipeline.config import PhaseConfig

    dflt = {k: f.default for k, f in PhaseConfig.model_fields.items()}  # the pipeline's defaults, one place
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
        default=None,
        metavar="STR",
        help=f'algorithm recipe (default "{dflt["recipe"]}"; e.g. "sup=50, HIO(0.7)**400, ER**100")',
    )
    c.add_argument(
        "--runs", type=int, default=None, metavar="N",
        help=f"independent runs from random starts (default {dflt['runs']})"
    )
    c.add_argument("--seed", type=int, default=None, metavar="S", help=f"random seed (default {dflt['seed']})")
    c.add_argument(
        "--support-threshold",
        type=float,
        default=None,
        metavar="T",
        help="shrink-wrap threshold, relative to the --support-method of the smoothed modulus "
        f"(default {dflt['support_threshold']})",
    )
    c.add_argument(
        "--support-method",
        choices=("max", "rms", "average"),
        default=None,
        help=f"what the threshold is relative to, inside the support (default {dflt['support_method']}; "
        "PyNX's default is rms 0.25)",
    )
    c.add_argument(
        "--select",
        choices=("llk_free", "llk", "sharpness"),
        default=None,
        help=f"criterion of the best run (default {dflt['select']})",
    )
    c.add_argument(
        "--backend",
        choices=("auto", "numpy", "cupy"),
        default=None,
        help=f"array backend (default {dflt['backend']}; auto: CuPy with a GPU, else numpy)",
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
        help="predicted candidates (input flips) refined, per source (network, corrector); the best by free "
        "LLK is kept (default 4, max 8)",
    )
    d.add_argument(
        "--no-corrector",
        dest="corrector",
        action="store_false",
        default=None,
        help="refine the network's candidates only, not the phase corrector's too (half the time; the "
        "corrector's candidates solve other strained crystals, docs/models.md)",
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


def config_of(args: argparse.Namespace):
    """The pipeline configuration of the options (``pipeline.steps.step_config``: unset options take the
    configuration's defaults, the same as ``bcdi-dl run`` and the napari docks)."""
    from ..pipeline.steps import step_config

    dl = args.method == "dl"
    return step_config("bcdi-dl phase", phase={
        "method": args.method, "recipe": args.recipe, "runs": args.runs, "seed": args.seed,
        "support_threshold": args.support_threshold, "support_method": args.support_method,
        "select": args.select, "backend": args.backend, "refine": args.refine if dl else None,
        "refine_iter": args.refine_iter if dl else None, "candidates": args.candidates if dl else None,
        "corrector": args.corrector if dl else None})


def run(args: argparse.Namespace) -> int:
    """Read, phase (``pipeline.steps.phase_step``), write; print a one-line summary."""
    protect = [args.input] + ([args.mask] if args.mask else [])
    out = _check_out(args.out, protect)
    if args.runs is not None and args.runs < 1:
        raise BCDIError(f"--runs must be at least 1, got {args.runs}")
    if args.method == "dl":
        _check_dl_args(args)
    else:
        from ..core.phasing import parse_recipe

        if args.recipe is not None:
            parse_recipe(args.recipe)  # a bad recipe fails before the data are read
    cfg = config_of(args)
    loaded, intensity, mask = _load(args)
    from ..pipeline.steps import phase_step

    with progress_bar("dl phasing" if args.method == "dl" else "phasing") as progress:
        # a file written by bcdi-dl inpaint: its gap is filled; with dl the fill is the network's input
        filled = bool(loaded.meta.get("inpainted")) and mask is not None
        outcome = phase_step(cfg, intensity, mask, filled=filled, progress=progress)
    rec = outcome.reconstruction
    print(f"bcdi-dl phase: {'refinement' if args.method == 'dl' else 'recipe'} run: {outcome.recipe_run()}")
    from ..core.io import write_reconstruction

    path = write_reconstruction(out, rec, loaded.geometry, protect=protect)
    print(f"bcdi-dl phase: {outcome.summary()} -> {path}")
    return 0
