"""Fine-tuning on the measured pattern itself (thesis §4.9): does it close the gap to linear interpolation?

Run: ``.venv/bin/python benchmarks/inpaint_finetune_quality.py [--steps 200] [--step 4] [--seed 0] [--per-gap]``

The measured pattern ``../shared/data/cdinn_exp_crop64.npz`` gets the artificial gaps of
``inpaint_quality.py`` (lines and crosses of 3/6/9/12 px through the peak). ONE fresh copy of the shipped
model is fine-tuned (``models.finetune.finetune``) on the pattern with the UNION of all those gaps zeroed
and masked, so that no voxel scored below was ever seen by the fine-tuning (its crops and artificial gaps
only use voxels outside the real mask). Then every gap is inpainted by the shipped model, the tuned model
and the linear / cubic baselines, and scored by the PCC of log(1+I) in the gap against the measured counts.
Prints a Markdown table.

``--per-gap``: what a user does instead: for EACH gap, a fresh copy is fine-tuned on the pattern with only
that gap zeroed and masked (the peak region outside it stays available to the crops), then inpaints it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inpaint_quality import REAL, WIDTHS, gap_mask, peak_centre  # noqa: E402

from napari_bcdi_dl.core.gaps import gap_pcc  # noqa: E402
from napari_bcdi_dl.models.finetune import finetune  # noqa: E402
from napari_bcdi_dl.models.inpaint import inpaint  # noqa: E402
from napari_bcdi_dl.models.registry import load_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--step", type=int, default=4, help="window step of the inpainting")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-gap", action="store_true", help="fine-tune one copy per gap (that gap masked)")
    args = ap.parse_args()
    with np.load(REAL) as f:
        data = np.asarray(f["data"], np.float32)
    c = peak_centre(data)
    masks = {(k, w): gap_mask(data.shape, w, k, c) for k in ("line", "cross") for w in WIDTHS}
    if args.per_gap:
        per_gap(data, masks, args)
        return
    union = np.zeros(data.shape, np.uint8)
    for m in masks.values():
        union |= m
    t0 = time.perf_counter()
    res = finetune(np.where(union == 1, 0, data).astype(np.float32), union, steps=args.steps, seed=args.seed)
    t_ft = time.perf_counter() - t0
    print(f"# fine-tuning: {args.steps} steps in {t_ft:.0f} s, loss on its fixed crops "
          f"{res.loss_before:.4f} -> {res.loss_after:.4f} ({int(union.sum())} voxels never seen)")
    shipped = load_model("inpaint")
    cols = {"dl": shipped, "dl fine-tuned": res.model, "linear": None, "cubic": None}
    print()
    print("| gap | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for (kind, w), m in masks.items():
        gapped = np.where(m == 1, 0, data).astype(np.float32)
        vals = []
        for name, model in cols.items():
            meth = "dl" if model is not None else name
            vals.append(gap_pcc(inpaint(gapped, m, method=meth, step=args.step, model=model), data, m))
        best = int(np.argmax(vals))
        print(f"| {kind} {w} px | " + " | ".join(f"**{v:.4f}**" if i == best else f"{v:.4f}"
                                                for i, v in enumerate(vals)) + " |", flush=True)


def per_gap(data: np.ndarray, masks: dict, args: argparse.Namespace) -> None:
    """One fine-tuned copy per gap, trained with only that gap masked."""
    shipped = load_model("inpaint")
    print("| gap | dl | dl fine-tuned (this gap masked) | linear | cubic | tuning loss | tuning time (s) |")
    print("|---|---|---|---|---|---|---|")
    for (kind, w), m in masks.items():
        gapped = np.where(m == 1, 0, data).astype(np.float32)
        t0 = time.perf_counter()
        res = finetune(gapped, m, steps=args.steps, seed=args.seed)
        t_ft = time.perf_counter() - t0
        vals = [gap_pcc(inpaint(gapped, m, method="dl", step=args.step, model=mod), data, m)
                for mod in (shipped, res.model)]
        vals += [gap_pcc(inpaint(gapped, m, method=b), data, m) for b in ("linear", "cubic")]
        best = int(np.argmax(vals))
        cells = [f"**{v:.4f}**" if i == best else f"{v:.4f}" for i, v in enumerate(vals)]
        print(f"| {kind} {w} px | " + " | ".join(cells)
              + f" | {res.loss_before:.4f} → {res.loss_after:.4f} | {t_ft:.0f} |", flush=True)


if __name__ == "__main__":
    main()
