"""``bcdi-dl inpaint IN --mask MASK --out OUT.npz``: fill the detector gaps of a pattern.

``--method dl`` (default) runs the shipped U-Net on 32³ windows slid along the gap (``--step``, default
4); ``linear | cubic | nearest | idw`` are the classical baselines. ``--finetune`` first fine-tunes a
copy of the model on the pattern's own crops with artificial gaps (``--finetune-steps``). OUT.npz holds
``data`` (float32, same shape, unchanged outside the gap) and ``mask`` (the gap mask, copied).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from ..core.errors import BCDIError

METHODS = ("dl", "linear", "cubic", "nearest", "idw")


def register(subparsers) -> None:
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
    p.add_argument("--step", type=int, default=4, help="dl: window stride along the gap (default 4)")
    p.add_argument("--batch", type=int, default=32, help="dl: windows per model call (default 32)")
    p.add_argument("--finetune", action="store_true",
                   help="dl: fine-tune the model on the pattern's own crops first")
    p.add_argument("--finetune-steps", type=int, default=200, help="fine-tuning steps (default 200)")
    p.add_argument("--scan", default=None, help="BLISS scan number")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


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

    from ..models.inpaint import inpaint

    disable = True if args.quiet else None
    t0 = time.perf_counter()
    model = None
    if args.finetune:
        from ..models.finetune import finetune

        with progress_bar("fine-tune", disable=disable) as bar:
            res = finetune(data, mask, steps=args.finetune_steps, progress=bar)
        model = res.model
        print(f"fine-tuned {res.steps} steps: loss on the pattern's crops {res.loss_before:.4g} -> "
              f"{res.loss_after:.4g}", file=sys.stderr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with progress_bar(f"inpaint ({args.method})", disable=disable) as bar:
            filled = inpaint(data, mask, method=args.method, step=args.step, batch=args.batch, model=model,
                             progress=bar)
    for w in caught:
        print(f"bcdi-dl inpaint: warning: {w.message}", file=sys.stderr)
    protect = [args.input] + ([args.mask] if args.mask else [])
    out = write_npz(args.out, protect=protect, data=filled.astype("float32", copy=False),
                    mask=(mask != 0).astype("uint8"))
    n = int((mask != 0).sum())
    print(f"{out}: {n} gap voxels filled ({args.method}) in {time.perf_counter() - t0:.1f} s")
    return 0
