"""``bcdi-dl inpaint IN --mask MASK --out OUT.npz``: fill the detector gaps of a pattern.

``--method dl`` (default) runs the shipped U-Net on 32³ windows slid along the gap (``--step``, default
4); ``linear | cubic | nearest | idw`` are the classical baselines. ``--finetune`` first fine-tunes a
copy of the model on the pattern's own crops with artificial gaps (``--finetune-steps``). OUT.npz holds
``data`` (float32, same shape, unchanged outside the gap) and ``mask`` (the gap mask, copied).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

from ..core.errors import BCDIError

METHODS = ("dl", "linear", "cubic", "nearest", "idw")


def register(subparsers) -> None:
    from ..pipeline.config import InpaintConfig

    dflt = InpaintConfig()  # the pipeline's defaults, one place
    p = subparsers.add_parser(
        "inpaint",
        help="fill detector gaps (DL U-Net or linear/cubic/nearest/idw baselines)",
        description="Fill the gap voxels of a 3D intensity; every other voxel is kept bit for bit.",
    )
    p.add_argument("input", metavar="IN", help="intensity file (npy, npz, tiff, frames folder, CXI, BLISS)")
    p.add_argument("--mask", default=None,
                   help="gap mask file (1 = gap; npy, npz, tiff, CXI); default: the mask stored with IN")
    p.add_argument("--out", required=True, help="output .npz (keys data, mask)")
    p.add_argument("--method", choices=METHODS, default="dl", help="inpainting method (default dl)")
    p.add_argument("--step", type=int, default=None, help=f"dl: window stride along the gap (default {dflt.step})")
    p.add_argument("--batch", type=int, default=None, help=f"dl: windows per model call (default {dflt.batch})")
    p.add_argument("--finetune", action="store_true",
                   help="dl: fine-tune the model on the pattern's own crops first")
    p.add_argument("--finetune-steps", type=int, default=None,
                   help=f"fine-tuning steps (default {dflt.finetune_steps})")
    p.add_argument("--scan", default=None, help="BLISS scan number")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _nothing():
    return contextlib.nullcontext(None)


def run(args: argparse.Namespace) -> int | None:
    from ..core.io import read, read_mask, write_npz
    from ._progress import progress_bar

    if args.finetune and args.method != "dl":
        raise BCDIError("--finetune applies to --method dl only")
    loaded = read(args.input, scan=args.scan)
    if loaded.kind != "intensity":
        raise BCDIError(f"{args.input} holds a reconstruction, not an intensity: give the diffraction data")
    data = loaded.data
    if args.mask is not None:
        mask = read_mask(args.mask, data.shape)
    elif loaded.mask is not None:
        mask = loaded.mask
    else:
        raise BCDIError(f"{args.input} stores no mask: give the gap mask with --mask")

    from ..pipeline.steps import inpaint_step, step_config

    cfg = step_config("bcdi-dl inpaint", inpaint={"method": args.method, "step": args.step, "batch": args.batch,
                                                  "finetune": args.finetune, "finetune_steps": args.finetune_steps})
    disable = True if args.quiet else None
    t0 = time.perf_counter()
    with progress_bar("fine-tune", disable=disable) if args.finetune else _nothing() as tune_bar, \
            progress_bar(f"inpaint ({args.method})", disable=disable) as bar:
        res = inpaint_step(cfg, data, mask, progress=bar, finetune_progress=tune_bar)
    if res.finetune is not None:
        print(f"fine-tuned {res.finetune.steps} steps: loss on the pattern's crops {res.finetune.loss_before:.4g} -> "
              f"{res.finetune.loss_after:.4g}", file=sys.stderr)
    for w in res.warnings:
        print(f"bcdi-dl inpaint: warning: {w}", file=sys.stderr)
    filled = data if res.filled is None else res.filled
    protect = [args.input] + ([args.mask] if args.mask else [])
    out = write_npz(args.out, protect=protect, data=filled.astype("float32", copy=False),
                    mask=(mask != 0).astype("uint8"), inpainted=str(args.method))
    n = int((mask != 0).sum())
    print(f"{out}: {n} gap voxels filled ({args.method}) in {time.perf_counter() - t0:.1f} s")
    return 0
