"""Why the inpainting model loses to linear interpolation on narrow gaps across smooth patterns.

Four diagnostics of ``docs/models.md`` (*Inpainting model*), fixed seeds, every number beside linear's from
the same run:

* ``regimes``: the like-measured case of ``inpaint_quality.py`` (rounded crystal, oversampling 2.6/3.7/2.3,
  6e6 photons, 2 patterns) with one parameter changed at a time; lines of 3 and 6 px through the peak;
* ``bins``: squared error and bias of log(1+I) in the 3- and 12-px line gaps per bin of the true intensity;
* ``shrink``: the network's correction scaled by alpha, ``prefill + alpha · correction``, window by window;
* ``heldout``: held-out metrics of the training loop (``make_val_metrics``) per dataset folder
  (``--val DIR ...``, made with the ``datasets`` commands of the model card).

    python benchmarks/inpaint_narrow_gaps.py [--model FILE.keras] [--only regimes bins shrink heldout]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inpaint_quality import gap_mask, peak_centre

from napari_bcdi_dl.core.gaps import extract_windows, gap_pcc, stitch_windows, window_origins
from napari_bcdi_dl.core.simulate import simulate_pattern
from napari_bcdi_dl.models import inpaint as ip

LIKE = {"shape": "rounded", "oversampling": (2.6, 3.7, 2.3), "max_counts": 6e6}
VARIANTS = {"as measured": {}, "oversampling 3.5": {"oversampling": (3.5,) * 3},
            "oversampling 4.5": {"oversampling": (4.5,) * 3}, "1e8 photons": {"max_counts": 1e8},
            "1e5 photons": {"max_counts": 1e5}, "Wulff shape": {"shape": "wulff"},
            "phase range 8 rad": {"phase_range": 8.0}}
ALPHAS = (0.0, 0.5, 0.75, 1.0, 1.25)


def like_measured(i: int, **change):
    """Noise-free and Poisson intensity of like-measured pattern ``i`` (seeds of inpaint_quality.py)."""
    kw = {**LIKE, "field": ("gaussian_bumps", "cosines")[i % 2], "phase_range": (0.5, 2.0, 1.0, 3.0)[i % 4]}
    kw.update(change)
    e = simulate_pattern(64, seed=7778_000 + i, noise=False, compute_phase=False, **kw).expected
    e = e.astype(np.float32)
    return e, np.random.default_rng([7778, i, 1]).poisson(e).astype(np.float32)


def line(e, noisy, w):
    m = gap_mask(e.shape, w, "line", peak_centre(e)).astype(bool)
    return np.where(m, 0, noisy).astype(np.float32), m


def regimes(model) -> None:
    print("| case | 3 px dl | 3 px linear | dl − linear | 6 px dl | 6 px linear | dl − linear |\n|---|---|---|---|---|---|---|")
    for name, change in VARIANTS.items():
        r = np.zeros((2, 2))
        for i in range(2):
            e, noisy = like_measured(i, **change)
            for j, w in enumerate((3, 6)):
                d, m = line(e, noisy, w)
                r[j] += [gap_pcc(ip.inpaint(d, m, method=k, model=model), e, m) for k in ("dl", "linear")]
        r /= 2
        print(f"| {name} | " + " | ".join(f"{a:.4f} | {b:.4f} | {a - b:+.4f}" for a, b in r) + " |", flush=True)


def bins(model) -> None:
    print("| pattern | gap | log(1+I) bin | voxels | dl MSE | linear MSE | dl bias | linear bias |\n"
          "|---|---|---|---|---|---|---|---|")
    for i in range(2):
        e, noisy = like_measured(i)
        for w in (3, 12):
            d, m = line(e, noisy, w)
            le = np.log1p(e[m])
            out = {k: np.log1p(ip.inpaint(d, m, method=k, model=model)[m]) for k in ("dl", "linear")}
            edges = np.quantile(le, [0, .25, .5, .75, .9, .99, 1])
            for a, b in itertools.pairwise(edges):
                s = (le >= a) & (le <= b)
                err = {k: v[s] - le[s] for k, v in out.items()}
                print(f"| {i} | {w} px | {a:.2f}–{b:.2f} | {s.sum()} | {np.mean(err['dl'] ** 2):.4f} | "
                      f"{np.mean(err['linear'] ** 2):.4f} | {err['dl'].mean():+.4f} | {err['linear'].mean():+.4f} |")


def shrink_pcc(model, d, m, truth, step: int = 4) -> dict:
    """Gap PCC of ``prefill + alpha · correction`` for every alpha (one network pass)."""
    origins = window_origins(m, 32, step)
    parts = []
    for s in range(0, len(origins), 32):
        o = origins[s:s + 32]
        x, lo, sc = ip.encode_windows(extract_windows(d, o, 32), extract_windows(m, o, 32))
        parts.append((o, x[..., 0], ip._predict(model, x, 32)[..., 0], lo, sc))
    res = {}
    for a in ALPHAS:
        total, count = np.zeros(d.shape), np.zeros(d.shape, np.int32)
        for o, x0, y, lo, sc in parts:
            t, c = stitch_windows(ip.decode_windows(x0 + a * (y - x0), lo, sc), o, d.shape, m)
            total += t
            count += c
        out = d.copy()
        sel = m & (count > 0)
        out[sel] = np.expm1(total[sel] / count[sel])
        res[a] = gap_pcc(out, truth, m)
    res["linear"] = gap_pcc(ip.inpaint(d, m, method="linear"), truth, m)
    return res


def shrink(model) -> None:
    keys = ALPHAS + ("linear",)
    head = " | ".join(f"α = {a}" if a != "linear" else a for a in keys)
    print(f"| gap | {head} |\n" + "|---" * (len(keys) + 1) + "|")
    for kind in ("line", "cross"):
        for w in (3, 6, 9, 12):
            rs = []
            for i in range(2):
                e, noisy = like_measured(i)
                m = gap_mask(e.shape, w, kind, peak_centre(e)).astype(bool)
                rs.append(shrink_pcc(model, np.where(m, 0, noisy).astype(np.float32), m, e))
            print(f"| {kind} {w} px | " + " | ".join(f"{np.mean([r[k] for r in rs]):.4f}" for k in keys) + " |",
                  flush=True)


def heldout(model, dirs) -> None:
    from napari_bcdi_dl.models.inpaint_loss import inpaint_loss
    from napari_bcdi_dl.models.inpaint_training import load_patches, make_val_metrics, val_batches

    metrics = make_val_metrics(inpaint_loss)
    print("| held-out set | PCC | PCC linear | L1 | L1 linear |\n|---|---|---|---|---|")
    for v in dirs:
        r = metrics(model, val_batches(load_patches([v], keys=("patches", "expected", "mask")), 16))
        print(f"| {Path(v).name} | {r['val_pcc']:.4f} | {r['val_pcc_linear']:.4f} | {r['val_l1']:.4f} | "
              f"{r['val_l1_linear']:.4f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help=".keras file (default: the shipped model)")
    ap.add_argument("--only", nargs="+", default=["regimes", "bins", "shrink", "heldout"],
                    choices=("regimes", "bins", "shrink", "heldout"))
    ap.add_argument("--val", nargs="+", default=[f"runs/data/{v}" for v in ("val64_s901", "val64_p903", "val64_r943")],
                    help="held-out dataset folders (heldout; skipped when missing)")
    args = ap.parse_args()
    from napari_bcdi_dl.models._keras import keras
    from napari_bcdi_dl.models.registry import load_model

    model = keras().saving.load_model(args.model, compile=False) if args.model else load_model("inpaint")
    print(f"# inpainting on narrow gaps, model {args.model or 'shipped'}")
    for part in args.only:
        print(f"\n**{part}**\n")
        if part == "heldout":
            dirs = [v for v in args.val if Path(v).is_dir()]
            if dirs:
                heldout(model, dirs)
            else:
                print("no held-out folder found: make them with the card's `datasets` commands")
        else:
            globals()[part](model)


if __name__ == "__main__":
    main()
