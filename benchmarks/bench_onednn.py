"""TensorFlow's oneDNN kernels on and off: the shipped models' inference and a training step.

TensorFlow turns oneDNN on by default only on CPUs with AVX-512 VNNI/BF16 or AMX; ``models._keras``
opts in everywhere (``TF_ENABLE_ONEDNN_OPTS=1`` unless the user set it). This script measures why: each
setting runs in its own interpreter (the variable is read when TensorFlow loads), on the same fixed-seed
inputs, interleaved ``--rounds`` times; it prints medians and the ratio off/on.

Run: ``.venv/bin/python benchmarks/bench_onednn.py [--rounds 2] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

import numpy as np

CHILD = r"""
import json, sys, time
import numpy as np
from napari_bcdi_dl.models._keras import keras
from napari_bcdi_dl.models.registry import load_model
repeat = int(sys.argv[1])
k = keras()
rng = np.random.default_rng(0)
def median_time(f):
    f()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return float(np.median(ts))
out = {}
inp = load_model("inpaint")
x = rng.random((32, 32, 32, 32, 2)).astype(np.float32)
out["inpaint inference, ms/window (batch 32)"] = median_time(lambda: inp.predict_on_batch(x)) / 32 * 1e3
inp.compile(optimizer=k.optimizers.Adam(1e-4), loss="mae")
xb, yb = x[:8], rng.random((8, 32, 32, 32, 1)).astype(np.float32)
out["inpaint training step, s (batch 8)"] = median_time(lambda: inp.train_on_batch(xb, yb))
ph = load_model("phase")
xp = rng.random((8, 32, 32, 32, 1)).astype(np.float32)
out["phase inference, ms/sample (batch 8)"] = median_time(lambda: ph.predict_on_batch(xp)) / 8 * 1e3
print("RESULT " + json.dumps(out))
"""


def run(setting: str, repeat: int) -> dict:
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=setting, TF_CPP_MIN_LOG_LEVEL="2")
    res = subprocess.run([sys.executable, "-c", CHILD, str(repeat)], capture_output=True, text=True,
                         env=env, check=False)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode != 0 or not line:
        raise RuntimeError(f"oneDNN={setting} run failed: {res.stderr.strip()[-800:]}")
    return json.loads(line[0][7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f} at start")
    results: dict = {"0": [], "1": []}
    for _ in range(args.rounds):
        for s in ("0", "1"):
            results[s].append(run(s, args.repeat))
    print("\n| what | oneDNN off | oneDNN on | off / on |\n|---|---|---|---|")
    for key in results["1"][0]:
        off = float(np.median([r[key] for r in results["0"]]))
        on = float(np.median([r[key] for r in results["1"]]))
        print(f"| {key} | {off:.3g} | {on:.3g} | {off / on:.2f}× |")


if __name__ == "__main__":
    main()
