"""What ``--linear-weight`` costs a training step of the inpainting model.

Run: ``.venv/bin/python benchmarks/bench_inpaint_training.py [--steps 40] [--batch 8] [--power 3]``

A small inpainting set (``generate_dataset``, 64 patches of 32³ patterns, seed 0, in a temporary folder);
a fresh copy of the shipped model compiled with the training loss. Interleaved rounds, each timing, with and
without the sample weights (power ``--power`` against 0): making a batch (``train_batches``: augmentation,
encoding, weights) and one ``train_on_batch`` on it. Prints medians in seconds and the ratio weighted / plain
of each, from the same process.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="timed steps per setting")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--power", type=float, default=3.0)
    args = ap.parse_args()
    from napari_bcdi_dl.core.simulate import generate_dataset
    from napari_bcdi_dl.models._keras import keras
    from napari_bcdi_dl.models.inpaint_loss import inpaint_loss
    from napari_bcdi_dl.models.inpaint_training import load_patches, train_batches
    from napari_bcdi_dl.models.registry import load_model

    k = keras()
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset("inpaint", os.path.join(tmp, "d"), n=64, size=32, seed=0, workers=1)
        data = load_patches([os.path.join(tmp, "d")])
    model = load_model("inpaint", fresh=True)
    model.compile(optimizer=k.optimizers.Adam(1e-6), loss=inpaint_loss)
    streams = {p: train_batches(data, args.batch, np.random.default_rng(0), linear_weight=p)
               for p in (0.0, args.power)}
    for p, it in streams.items():  # one untimed step each: tracing of both target shapes
        model.train_on_batch(*next(it))
    t_batch = {p: [] for p in streams}
    t_step = {p: [] for p in streams}
    for _ in range(args.steps):
        for p, it in streams.items():
            t0 = time.perf_counter()
            x, y = next(it)
            t1 = time.perf_counter()
            model.train_on_batch(x, y)
            t_step[p].append(time.perf_counter() - t1)
            t_batch[p].append(t1 - t0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {platform.machine()} {os.cpu_count()} CPUs, batch {args.batch}, {args.steps} steps each, "
          f"load average {load:.1f} at the end")
    print(f"| part | plain (s) | --linear-weight {args.power:g} (s) | ratio |\n|---|---|---|---|")
    for name, t in (("make a batch", t_batch), ("train_on_batch", t_step)):
        a, b = (float(np.median(t[p])) for p in streams)
        print(f"| {name} | {a:.4f} | {b:.4f} | {b / a:.3f} |")
    a, b = (float(np.median(np.add(t_batch[p], t_step[p]))) for p in streams)
    print(f"| whole step | {a:.4f} | {b:.4f} | {b / a:.3f} |")


if __name__ == "__main__":
    main()
