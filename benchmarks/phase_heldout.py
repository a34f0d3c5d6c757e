"""Held-out WCA of phase models on one held-out set: compare models trained on different runs fairly.

Run: ``.venv/bin/python benchmarks/phase_heldout.py --val runs/phase/data/val32 [--limit 256] MODEL ...``

Each MODEL is a model name (``phase``: the shipped one), a weights file stem or a ``.keras`` path. The
held-out set's own noisy counts are the inputs (no augmentation, as in training's validation); prints the
mean WCA loss (0 perfect, ~1 random) overall and per strain group (low < 2π, mid 2π–3.5π, high ≥ 3.5π) and
the time per sample.
"""

from __future__ import annotations

import argparse
import time

from napari_bcdi_dl.models.phase_training import PhaseSet, held_out_metrics, validation_batches
from napari_bcdi_dl.models.registry import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--val", nargs="+", required=True, help="held-out dataset folder(s)")
    ap.add_argument("--limit", type=int, default=None, help="at most that many samples")
    ap.add_argument("--size", type=int, default=32, help="model grid")
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


if __name__ == "__main__":
    main()
