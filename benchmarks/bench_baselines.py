"""Time the classical gap fills on a 128³ pattern with a 6-px cross gap (fixed seed).

Run: ``.venv/bin/python benchmarks/bench_baselines.py [--size 128] [--repeat 3]``

Prints, for each baseline of ``core.gap_fill.fill_baseline``, the best wall time of ``--repeat`` runs, its
ratio to ``nearest`` measured in the same process, and the PCC of log(1+I) inside the gap against the
noise-free and the noisy pattern. Also times the window plan / extraction / stitching of the DL path at
step 4 (no model). The pattern is self-contained (a faceted particle with a smooth phase field, Poisson
noise, oversampling ~3), so the script does not depend on ``core.simulate``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from napari_bcdi_dl.core import gap_fill, gaps


def make_pattern(n: int, seed: int = 0, max_counts: float = 1e6) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free and Poisson-noisy |FT|² of a faceted particle (~n/3 wide) with a smooth phase."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(n, dtype=np.float64) - n // 2] * 3, indexing="ij")
    r = n / 6.0
    shape = (np.abs(x) + np.abs(y) + np.abs(z) < 1.6 * r) & (np.abs(x) < r) & (np.abs(y) < r) & (np.abs(z) < r)
    phase = np.zeros_like(x)
    for _ in range(4):
        c = rng.uniform(-r, r, 3)
        phase += rng.uniform(-1.5, 1.5) * np.exp(-((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) / (2 * (r / 2) ** 2))
    obj = shape * np.exp(1j * phase)
    expected = np.abs(np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj)))) ** 2
    expected = expected / expected.max() * max_counts
    return expected.astype(np.float32), rng.poisson(expected).astype(np.float32)


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--width", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n, w = args.size, args.width
    expected, noisy = make_pattern(n, seed=0)
    mask = np.zeros((n, n, n), np.uint8)
    a = n // 2 - w // 2
    mask[:, a:a + w, :] = 1
    mask[:, :, a + 1:a + 1 + w] = 1  # a Maxipix-like cross, slightly off-centre in x
    data = np.where(mask == 1, 0, noisy).astype(np.float32)

    print(f"# fill_baseline on {n}³, {w}-px cross gap ({int(mask.sum())} voxels), best of {args.repeat}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}")
    rows = []
    t_ref = None
    for method in gap_fill.METHODS:
        t, out = best_time(lambda m=method: gap_fill.fill_baseline(data, mask, m), args.repeat)
        if method == "nearest":
            t_ref = t
        rows.append((method, t, t / t_ref, gaps.gap_pcc(out, expected, mask), gaps.gap_pcc(out, noisy, mask)))
    print("| method | time (s) | ratio to nearest | PCC log(1+I) vs noise-free | PCC vs noisy |")
    print("|---|---|---|---|---|")
    for method, t, ratio, p_true, p_noisy in rows:
        print(f"| {method} | {t:.3f} | {ratio:.2f} | {p_true:.4f} | {p_noisy:.4f} |")

    size, step = 32, 4
    t_plan, origins = best_time(lambda: gaps.window_origins(mask, size, step), args.repeat)
    t_ext, windows = best_time(lambda: gaps.extract_windows(data, origins, size), args.repeat)
    t_st, _ = best_time(lambda: gaps.stitch_windows(windows, origins, data.shape, mask), args.repeat)
    print(f"\n# DL window path (no model), {size}³ windows at step {step}: {len(origins)} windows")
    print("| stage | time (s) | ratio to nearest fill |")
    print("|---|---|---|")
    for name, t in (("window_origins", t_plan), ("extract_windows", t_ext), ("stitch_windows", t_st)):
        print(f"| {name} | {t:.3f} | {t / t_ref:.2f} |")


if __name__ == "__main__":
    main()
