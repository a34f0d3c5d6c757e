"""Held-out WCA of phase models on one held-out set: compare models trained on different runs fairly.

Run: ``.venv/bin/python benchmarks/phase_heldout.py --val runs/phase/data/val32 [--limit 256] MODEL ...``

Each MODEL is a model name (``phase``: the shipped one), a weights file stem or a ``.keras`` path. The
held-out set's own noisy counts are the inputs (no augmentation, as in training's validation); prints the
mean WCA loss (0 perfect, ~1 random) overall and per strain group (low < 2π, mid 2π–3.5π, high ≥ 3.5π) and
the time per sample.

``--tta``: also the test-time augmentation of the DL pipeline (``models.dl_phasing.FLIPS``: the input under 8
axis flips, each prediction flipped back), per model: the mean WCA of a single flipped prediction, the best
of the 8 per sample (an oracle: the pipeline picks by LLK, not by the truth), and the WCA of their
**coherent average**: each flipped-back prediction aligned to a reference (the sign of the twin, then the
global offset, both by the intensity-weighted phasor sum the WCA uses), the unit phasors averaged, the
reference replaced by the average and the alignment repeated once.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from napari_bcdi_dl.models.phase_training import PhaseSet, held_out_metrics, strain_bins, validation_batches
from napari_bcdi_dl.models.registry import load_model
from napari_bcdi_dl.models.wca import wca_numpy, wca_weights


def align(phi: np.ndarray, ref: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``±phi + c`` (the twin's sign and the offset that best match ``ref`` under the weights ``w``)."""
    best = None
    for s in (1.0, -1.0):
        z = np.sum(w * np.exp(1j * (s * phi - ref)))
        if best is None or abs(z) > abs(best[1]):
            best = (s, z)
    return best[0] * phi - np.angle(best[1])


def coherent_average(phis: list[np.ndarray], w: np.ndarray, rounds: int = 2) -> np.ndarray:
    """Phase of the mean unit phasor of ``phis`` aligned to a reference (first the first one, then the mean)."""
    ref = phis[0]
    for _ in range(rounds):
        ref = np.angle(np.mean([np.exp(1j * align(p, ref, w)) for p in phis], axis=0))
    return ref


def tta_metrics(model, batches: list) -> dict:
    """Per-sample WCA of: the plain prediction, a flipped one (mean over flips), the best flip, the average."""
    from napari_bcdi_dl.models.dl_phasing import FLIPS

    rows = {"single": [], "flip_mean": [], "flip_best": [], "average": []}
    for x, y in batches:
        xs = x[..., 0]
        preds = []
        for f in FLIPS:
            xf = np.stack([np.flip(a, f) if f else a for a in xs])
            p = np.asarray(model.predict_on_batch(xf[..., None]))[..., 0]
            preds.append(np.stack([np.flip(a, f) if f else a for a in p]))
        for k in range(len(xs)):
            truth, li = y[k, ..., 0], y[k, ..., 1]
            w = wca_weights(li)
            per_flip = [wca_numpy(truth, preds[j][k], li) for j in range(len(FLIPS))]
            rows["single"].append(per_flip[0])
            rows["flip_mean"].append(float(np.mean(per_flip)))
            rows["flip_best"].append(min(per_flip))
            avg = coherent_average([preds[j][k] for j in range(len(FLIPS))], w)
            rows["average"].append(wca_numpy(truth, avg, li))
    return {k: np.asarray(v) for k, v in rows.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--val", nargs="+", required=True, help="held-out dataset folder(s)")
    ap.add_argument("--limit", type=int, default=None, help="at most that many samples")
    ap.add_argument("--size", type=int, default=32, help="model grid")
    ap.add_argument("--tta", action="store_true", help="also the 8-flip test-time augmentation and its average")
    args = ap.parse_args()
    data = PhaseSet(args.val, args.size, max_samples=args.limit, keep_intensity=True)
    batches = validation_batches(data, 8)
    print(f"# held-out: {len(data)} samples of {args.size}³ from {', '.join(args.val)}")
    print("| model | WCA | low | mid | high | ms/sample |\n|---|---|---|---|---|---|")
    for name in args.models:
        model = load_model(name)
        t0 = time.perf_counter()
        m = held_out_metrics(model, batches, data.phase_range)
        dt = (time.perf_counter() - t0) / len(data) * 1e3
        cells = [f"{m.get(k, float('nan')):.4f}" for k in ("val_wca", "val_wca_low", "val_wca_mid", "val_wca_high")]
        print(f"| {name} | " + " | ".join(cells) + f" | {dt:.1f} |", flush=True)
    if args.tta:
        print("\n| model | prediction | WCA | low | mid | high |\n|---|---|---|---|---|---|")
        bins = strain_bins(data.phase_range[:len(data)])
        for name in args.models:
            rows = tta_metrics(load_model(name), batches)
            for kind, v in rows.items():
                cells = [f"{v.mean():.4f}"] + [f"{v[bins[b]].mean():.4f}" if bins[b].any() else "–"
                                               for b in ("low", "mid", "high")]
                print(f"| {name} | {kind} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
