"""Quality of the defect classifier and of the vortex finder (issue 22). Fixed seeds.

(a) Classifier (the shipped ``models/weights/defects_cnn.keras`` or ``--model``) on a held-out
    ``bcdi-dl dataset defects`` set made with its own seed (default ``runs/defects/test``:
    ``bcdi-dl dataset defects runs/defects/test --n 400 --size 64 --seed 2022 --workers 1``, the set of
    docs/defects.md; Poisson noise at 10^5–10^8 photons; ``--model`` also takes a ``.keras`` path):
    4-class accuracy, detection accuracy (dislocation vs none, ``p(none) < 0.5`` = dislocation; goal ≥ 95 %),
    type accuracy (edge vs screw among the true edge and screw patterns, the larger of p(edge), p(screw);
    goal ≥ 90 %), the confusion matrix, and the detection accuracy per decade of photons.
(b) Inference time per 64³ pattern on this CPU, one pattern at a time as ``bcdi-dl classify`` runs it
    (preprocessing + network; the model loaded once): median wall-clock and CPU time over ``--timing``
    patterns (goal ≤ 0.5 s).
(c) Vortex finder on the true objects of simulated patterns (``simulate_defect_pattern`` seeds 5000+i, 64³,
    noise-free): the fraction of each true line's length inside the support (eroded by 2 voxels) that has a
    found vortex within 2 voxels (goal ≥ 90 % for every line), and vortices found in defect-free objects
    (goal 0).

``--g-axis z|y|x``: the set has G along that array axis (``bcdi-dl dataset defects --g-axis``); every
pattern is turned so that it is axis 0 (``models.defects.orient_to_g``, as ``bcdi-dl classify --g-axis``
does) before the model (give ``--model defects_gz``, the G-aware one).

Usage: ``python benchmarks/defects_quality.py [--data runs/defects/test] [--model defects] [--g-axis z]
[--timing 20] [--vortex 40]``; copy the tables into docs/defects.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def classifier(data: str, model_name: str,
               g_axis: str | None = None) -> tuple[dict, np.ndarray, np.ndarray, list]:
    from napari_bcdi_dl.core.simulate.datasets import iter_shards
    from napari_bcdi_dl.models.defects import orient_to_g, predict_probabilities, preprocess
    from napari_bcdi_dl.models.defects_training import metrics
    from napari_bcdi_dl.models.registry import load_model

    model = load_model(model_name)
    probs, labels, counts = [], [], []
    for shard in iter_shards(data, keys=["intensity", "label", "params"]):
        x = np.stack([preprocess(orient_to_g(a, g_axis)) for a in shard["intensity"]])
        probs.append(predict_probabilities(model, x, batch_size=16))
        labels.append(shard["label"].astype(int))
        counts += [p["max_counts"] for p in shard["params"]]
    probs, labels = np.concatenate(probs), np.concatenate(labels)
    return metrics(probs, labels), probs, labels, counts


def timing(data: str, model_name: str, n: int, g_axis: str | None = None) -> dict:
    from napari_bcdi_dl.core.simulate.datasets import iter_shards
    from napari_bcdi_dl.models.defects import classify
    from napari_bcdi_dl.models.registry import load_model

    model = load_model(model_name)
    pats = []
    for shard in iter_shards(data, keys=["intensity"]):
        pats += list(shard["intensity"])
        if len(pats) >= n + 1:
            break
    classify(pats[0], model=model, g_axis=g_axis)  # warm-up (graph tracing)
    wall, cpu = [], []
    for a in pats[1:n + 1]:
        t0, c0 = time.perf_counter(), time.process_time()
        classify(a, model=model, g_axis=g_axis)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"n": len(wall), "wall_median_s": float(np.median(wall)), "wall_p90_s": float(np.percentile(wall, 90)),
            "cpu_median_s": float(np.median(cpu))}


def vortices(n: int) -> dict:
    from scipy import ndimage

    from napari_bcdi_dl.core.simulate.dislocations import LABELS, simulate_defect_pattern
    from napari_bcdi_dl.core.vortices import find_vortex_lines, line_coverage

    cover = {k: [] for k in LABELS[1:]}
    false_none, seconds = [], []
    for i in range(n):
        label = LABELS[i % 4]
        p = simulate_defect_pattern(64, seed=5000 + i, label=label, noise=False)
        t0 = time.perf_counter()
        lines = find_vortex_lines(p.obj, p.support)
        seconds.append(time.perf_counter() - t0)
        if label == "none":
            false_none.append(sum(len(ln.points) for ln in lines))
            continue
        inside = ndimage.binary_erosion(p.support.astype(bool), iterations=2)
        for line in p.params["lines"]:
            cover[label].append(line_coverage(lines, np.array(line["point"]) + 32, line["direction"], inside))
    return {"coverage": {k: {"lines": len(v), "min": float(np.min(v)), "mean": float(np.mean(v)),
                             "at_least_90": float(np.mean(np.array(v) >= 0.9))} for k, v in cover.items()},
            "none_objects": len(false_none), "vortices_in_none": int(np.sum(false_none)),
            "median_s": float(np.median(seconds))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO / "runs" / "defects" / "test"))
    ap.add_argument("--model", default="defects")
    ap.add_argument("--g-axis", default=None, help="z, y or x: the set has G along that axis (see above)")
    ap.add_argument("--timing", type=int, default=20)
    ap.add_argument("--vortex", type=int, default=40)
    ap.add_argument("--json", default=None, help="also write the numbers to this file")
    args = ap.parse_args()
    out: dict = {}
    if args.data:
        m, probs, labels, counts = classifier(args.data, args.model, args.g_axis)
        out["classifier"] = m
        g = args.g_axis or "not given"
        print(f"(a) held-out {args.data} (model {args.model}, G axis {g}): n = {m['n']}")
        print("| metric | value |\n|---|---|")
        for k in ("accuracy", "detection_accuracy", "false_positive_rate", "miss_rate", "type_accuracy"):
            print(f"| {k.replace('_', ' ')} | {100 * m[k]:.1f} % |")
        print("\nconfusion matrix (rows: true, columns: predicted; none, edge, screw, mixed)")
        for row, name in zip(m["confusion_matrix"], ("none", "edge", "screw", "mixed")):
            print(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
        dec = np.floor(np.log10(counts)).astype(int)
        print("\n| photons | n | detection accuracy | type accuracy |\n|---|---|---|---|")
        per = {}
        for d in sorted(set(dec)):
            sel = dec == d
            det = np.mean((labels[sel] != 0) == (probs[sel, 0] < 0.5))
            es = sel & ((labels == 1) | (labels == 2))
            typ = np.mean(np.where(probs[es, 1] >= probs[es, 2], 1, 2) == labels[es]) if es.any() else float("nan")
            per[f"1e{d}"] = {"n": int(sel.sum()), "detection_accuracy": float(det), "type_accuracy": float(typ)}
            print(f"| 10^{d}–10^{d + 1} | {sel.sum()} | {100 * det:.1f} % | {100 * typ:.1f} % |")
        out["per_decade"] = per
    if args.timing:
        t = timing(args.data, args.model, args.timing, args.g_axis)
        out["timing"] = t
        print(f"\n(b) inference per 64³ pattern ({t['n']} patterns): median {t['wall_median_s']:.3f} s wall "
              f"(90th percentile {t['wall_p90_s']:.3f} s), {t['cpu_median_s']:.3f} s CPU")
    if args.vortex:
        v = vortices(args.vortex)
        out["vortices"] = v
        print(f"\n(c) vortex finder on {args.vortex} true objects (median {v['median_s']:.3f} s each)")
        print("| lines | n | coverage min | mean | lines with ≥ 90 % |\n|---|---|---|---|---|")
        for k, c in v["coverage"].items():
            print(f"| {k} | {c['lines']} | {100 * c['min']:.1f} % | {100 * c['mean']:.1f} % | "
                  f"{100 * c['at_least_90']:.0f} % |")
        print(f"defect-free objects: {v['none_objects']}, vortices found in them: {v['vortices_in_none']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
