"""What ``--linear-weight`` and ``--bright-weight`` cost a training step of the inpainting model.

Run: ``.venv/bin/python benchmarks/bench_inpaint_training.py [--steps 40] [--batch 8] [--power 3] [--bright 1]``

A small inpainting set (``generate_dataset``, 64 patches of 32³ patterns, seed 0, in a temporary folder);
a fresh copy of the shipped model compiled with the training loss. Interleaved rounds, each timing, with and
without the sample weights (power ``--power`` against 0): making a batch (``train_batches``: augmentation,
encoding, weights) and one ``train_on_batch`` on it. Prints medians in seconds and the ratio weighted / plain
of each, from the same process. With ``--bright W``, a second fresh copy compiled with the loss of
``--bright-weight W`` trains on the same plain batches in the same rounds: its ``train_on_batch`` against
the plain one's.
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
    ap.add_argument("--bright", type=float, default=0.0, help="also time the loss of --bright-weight W")
    args = ap.parse_args()
    from napari_bcdi_dl.core.simulate import generate_dataset
    from napari_bcdi_dl.models._keras import keras
    from napari_bcdi_dl.models.inpaint_loss import inpaint_loss, make_inpaint_loss
    from napari_bcdi_dl.models.inpaint_training import load_patches, train_batches
    from napari_bcdi_dl.models.registry import load_model

    k = keras()
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset("inpaint", os.path.join(tmp, "d"), n=64, size=32, seed=0, workers=1)
        data = load_patches([os.path.join(tmp, "d")])
    model = load_model("inpaint", fresh=True)
    model.compile(optimizer=k.optimizers.Adam(1e-6), loss=inpaint_loss)
    bright = None
    if args.bright:
        bright = load_model("inpaint", fresh=True)
        bright.compile(optimizer=k.optimizers.Adam(1e-6), loss=make_inpaint_loss(bright_weight=args.bright))
    streams = {p: train_batches(data, args.batch, np.random.default_rng(0), linear_weight=p)
               for p in (0.0, args.power)}
    for p, it in streams.items():  # one untimed step each: tracing of both target shapes
        model.train_on_batch(*next(it))
    if bright is not None:
        bright.train_on_batch(*next(streams[0.0]))
    t_batch = {p: [] for p in streams}
    t_step = {p: [] for p in streams}
    t_bright = []
    for _ in range(args.steps):
        for p, it in streams.items():
            t0 = time.perf_counter()
            x, y = next(it)
            t1 = time.perf_counter()
            model.train_on_batch(x, y)
            t_step[p].append(time.perf_counter() - t1)
            t_batch[p].append(t1 - t0)
            if bright is not None and p == 0.0:
                t2 = time.perf_counter()
                bright.train_on_batch(x, y)
                t_bright.append(time.perf_counter() - t2)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {platform.machine()} {os.cpu_count()} CPUs, batch {args.batch}, {args.steps} steps each, "
          f"load average {load:.1f} at the end")
    print(f"| part | plain (s) | --linear-weight {args.power:g} (s) | ratio |\n|---|---|---|---|")
    for name, t in (("make a batch", t_batch), ("train_on_batch", t_step)):
        a, b = (float(np.median(t[p])) for p in streams)
        print(f"| {name} | {a:.4f} | {b:.4f} | {b / a:.3f} |")
    a, b = (float(np.median(np.add(t_batch[p], t_step[p]))) for p in streams)
    print(f"| whole step | {a:.4f} | {b:.4f} | {b / a:.3f} |")
    if t_bright:
        a, b = float(np.median(t_step[0.0])), float(np.median(t_bright))
        print(f"\n| part | plain (s) | --bright-weight {args.bright:g} (s) | ratio |\n|---|---|---|---|")
        print(f"| train_on_batch | {a:.4f} | {b:.4f} | {b / a:.3f} |")


if __name__ == "__main__":
    main()
