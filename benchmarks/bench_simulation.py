"""Simulation throughput against what a CPU training consumes (fixed seeds; prints a markdown table).

A 3D U-Net training step costs about 0.25 s per 32³ sample and 1.5 s per 64³ sample on the project's
2-core CPUs (``../shared/notes/cpu-training-budget.md``). Generation must be faster: the ratio
``generation rate / consumption rate`` must stay above 1 (data generation never dominates training).
The whole path is timed: simulation, cropping, noise and the HDF5 shards written by ``generate_dataset``.

Usage::

    .venv/bin/python benchmarks/bench_simulation.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from napari_bcdi_dl.core.simulate import generate_dataset, strained_particle_with_gap

CONSUMPTION_S = {32: 0.25, 64: 1.5}  # training seconds per sample, by model input size


def time_sample(repeats: int) -> list[float]:
    strained_particle_with_gap(seed=0)  # warm-up (imports, FFT plans)
    out = []
    for i in range(repeats):
        t = time.perf_counter()
        strained_particle_with_gap(seed=i)
        out.append(time.perf_counter() - t)
    return out


def time_dataset(kind: str, size: int, n: int, workers: int) -> float:
    """Samples per second of generate_dataset into a fresh folder, shards written."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        generate_dataset(kind, Path(tmp) / "d", n=n, size=size, seed=2024, workers=workers)
        return n / (time.perf_counter() - t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples (noisier)")
    args = ap.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    scale = 1 if args.quick else 2
    load0 = os.getloadavg()[0]

    ts = time_sample(3 * scale)
    print(f"# Simulation throughput ({cores} cores, load average {load0:.1f} at start)\n")
    print(
        f"napari sample 'Strained particle with detector gap' (128³): median {statistics.median(ts):.2f} s, "
        f"max {max(ts):.2f} s over {len(ts)} runs (target < 2 s)\n"
    )
    rows = [
        ("inpaint 32³ patches from 64³ patterns", "inpaint", 64, 32, 48 * scale),
        ("inpaint 32³ patches from 128³ patterns (4 per pattern)", "inpaint", 128, 32, 32 * scale),
        ("phase 64³ patterns", "phase", 64, 64, 12 * scale),
    ]
    print("| dataset | workers | samples/s | training consumes/s | ratio (≥ 1 needed) |")
    print("|---|---|---|---|---|")
    for label, kind, size, model, n in rows:
        consume = 1.0 / CONSUMPTION_S[model]
        for w in sorted({1, cores}):
            rate = time_dataset(kind, size, n, w)
            print(f"| {label} | {w} | {rate:.2f} | {consume:.2f} | {rate / consume:.1f}× |", flush=True)
    print(
        f"\nload average at the end: {os.getloadavg()[0]:.1f} (other work on the machine slows every number)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
