"""Speed of DL phasing (issue 6, item 8). Fixed seed, everything measured in the same process.

(a) network prediction time on the model grid (32³, batch 1, CPU): median and minimum of ``--reps``
    calls after a warm-up;
(b) the whole DL pipeline (centring, crop, prediction, object, support, ``--refine-iter`` ER iterations) on
    a simulated 128³ strained pattern (3.5π, oversampling 3) against the conventional recipe
    ``HIO**400, RAAR**1000, ER**300`` on the same pattern: one run timed, and the ratio for ``--runs``
    runs (the issue's baseline is 20 runs, best by free LLK; runs are independent, so N runs cost N
    times one run on this CPU).

Usage: ``.venv/bin/python benchmarks/bench_dl_phase.py [--size 128] [--runs 20] [--refine-iter 400]``
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from napari_bcdi_dl.core.metrics import compare, is_match
from napari_bcdi_dl.core.phasing import phase
from napari_bcdi_dl.core.simulate import simulate_pattern
from napari_bcdi_dl.models.dl_phasing import dl_phase, load_phase_model
from napari_bcdi_dl.models.phase import model_grid_size, predict_phase

RECIPE = "HIO**400, RAAR**1000, ER**300"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--runs", type=int, default=20, help="conventional runs the ratio is given for")
    ap.add_argument("--refine-iter", type=int, default=400)
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    print(f"# bench_dl_phase — {platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")

    model, card = load_phase_model()
    s = model_grid_size(model)
    x = np.random.default_rng(0).random((s, s, s)).astype(np.float32)
    predict_phase(model, x)
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        predict_phase(model, x)
        times.append(time.perf_counter() - t0)
    print(f"(a) prediction at {s}³: median {np.median(times) * 1e3:.0f} ms, min {np.min(times) * 1e3:.0f} ms "
          f"({args.reps} calls, batch 1, model {card.get('name')}, {model.count_params() / 1e6:.2f} M parameters)")

    p = simulate_pattern(args.size, seed=7, phase_range=3.5 * np.pi, oversampling=3.0, max_counts=1e8)
    t0 = time.perf_counter()
    rec = dl_phase(p.intensity, refine_iter=args.refine_iter)
    t_dl = time.perf_counter() - t0
    ok_dl = is_match(compare(p.obj, rec.obj, p.support, rec.support))
    t0 = time.perf_counter()
    res = phase(p.intensity, recipe=RECIPE, runs=1, seed=0)
    t_conv = time.perf_counter() - t0
    ok_conv = is_match(compare(p.obj, res.best.obj, p.support, res.best.support))
    print(f"(b) {args.size}³ pattern, 3.5π: DL pipeline (prediction {rec.meta['prediction_s']:.2f} s + "
          f"{args.refine_iter} ER) {t_dl:.1f} s, success {ok_dl}; conventional {RECIPE} one run "
          f"{t_conv:.1f} s, success {ok_conv}")
    print(f"    ratio conventional/DL: 1 run {t_conv / t_dl:.1f}×, {args.runs} runs {args.runs * t_conv / t_dl:.0f}×")


if __name__ == "__main__":
    main()
