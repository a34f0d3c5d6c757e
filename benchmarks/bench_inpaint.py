"""Speed of DL inpainting: windows per second, a full 128³ pattern, PCC and time against the step.

Run: ``.venv/bin/python benchmarks/bench_inpaint.py [--steps 2 4 8 16] [--batch 32] [--model FILE]``

1. **Throughput**: the shipped model on batches of ``--batch`` encoded 32³ windows
   (``predict_on_batch``), and the encoding (log, normalisation, linear pre-fill) per window; median of
   ``--repeat`` batches.
2. **Full volume**: ``core.simulate.strained_particle_with_gap`` (128³, 6-px Maxipix-like cross, the
   napari sample) inpainted at each ``--steps`` value: windows, wall time, PCC of log(1 + I) in the gap
   against the noise-free and the noisy pattern; the linear baseline timed in the same process (ratio).
   The target of the issue: ≤ 60 s at step 4 on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from napari_bcdi_dl.core.gaps import extract_windows, gap_pcc, window_origins
from napari_bcdi_dl.models.inpaint import encode_windows, inpaint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    from napari_bcdi_dl.core.simulate import strained_particle_with_gap
    from napari_bcdi_dl.models._keras import keras
    from napari_bcdi_dl.models.registry import load_model

    k = keras()
    model = load_model(args.model or "inpaint")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, keras {k.__version__} ({k.backend.backend()}), "
          f"{model.count_params()} parameters, load average {load:.1f} at start")

    p = strained_particle_with_gap(seed=0)
    data, m, expected, noisy = p.intensity, p.mask, p.expected, None
    noisy = np.random.default_rng(0).poisson(expected).astype(np.float32)  # gap-free noisy truth
    data = np.where(m == 1, 0, noisy).astype(np.float32)

    origins = window_origins(m, 32, 4)
    o = origins[: args.batch]
    w, wm = extract_windows(data, o, 32), extract_windows(m, o, 32)
    enc, pred = [], []
    x = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        x, _, _ = encode_windows(w, wm)
        enc.append(time.perf_counter() - t0)
    model.predict_on_batch(x)
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        model.predict_on_batch(x)
        pred.append(time.perf_counter() - t0)
    te, tp = np.median(enc) / len(o), np.median(pred) / len(o)
    print(f"\nthroughput at batch {len(o)}: model {1 / tp:.1f} windows/s ({tp * 1e3:.1f} ms/window), "
          f"encoding {te * 1e3:.1f} ms/window, together {1 / (tp + te):.1f} windows/s")

    t0 = time.perf_counter()
    lin = inpaint(data, m, method="linear")
    t_lin = time.perf_counter() - t0
    print(f"\n128³ strained_particle_with_gap, 6-px cross ({int(m.sum())} gap voxels); "
          f"linear baseline {t_lin:.2f} s, PCC vs noise-free {gap_pcc(lin, expected, m):.4f}, "
          f"vs noisy {gap_pcc(lin, noisy, m):.4f}\n")
    print("| step | windows | time (s) | windows/s | time / linear | PCC vs noise-free | PCC vs noisy |")
    print("|---|---|---|---|---|---|---|")
    for step in args.steps:
        n = len(window_origins(m, 32, step))
        t0 = time.perf_counter()
        out = inpaint(data, m, step=step, batch=args.batch, model=model)
        dt = time.perf_counter() - t0
        print(f"| {step} | {n} | {dt:.1f} | {n / dt:.1f} | {dt / t_lin:.0f} | {gap_pcc(out, expected, m):.4f} "
              f"| {gap_pcc(out, noisy, m):.4f} |", flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n# load average {load:.1f} at the end (other processes share the 2 cores: times are upper bounds)")


if __name__ == "__main__":
    main()
