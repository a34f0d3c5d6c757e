"""Why the inpainting model loses to linear interpolation on narrow gaps across smooth patterns.

Four diagnostics of ``docs/models.md`` (*Inpainting model*), fixed seeds, every number beside linear's from
the same run:

* ``regimes``: the like-measured case of ``inpaint_quality.py`` (rounded crystal, oversampling 2.6/3.7/2.3,
  6e6 photons, 2 patterns) with one parameter changed at a time; lines of 3 and 6 px through the peak;
* ``bins``: squared error and bias of log(1+I) in the 3- and 12-px line gaps per bin of the true intensity;
* ``shrink``: the network's correction scaled by alpha, ``prefill + alpha · correction``, window by window;
* ``heldout``: held-out metrics of the training loop (``make_val_metrics``) per dataset folder
  (``--val DIR ...``, made with the ``datasets`` commands of the model card);
* ``radial``: error and bias of log(1+I) in 3- and 6-px line gaps through the peak per in-plane distance
  from the peak, on the measured pattern and on like-measured pattern 1 (against the noise-free truth);
* ``falloff``: median counts (and 10th percentile / median, how filled the fringe minima are) per
  distance from the peak of the measured pattern and of like-measured pattern 1 with the default edge
  (σ 0.6) and with a sharp edge (σ 0.15) and a 0.5-voxel blur (``docs/simulation.md``, *edge σ*);
* ``databias``: what the training data teach there: truth − linear pre-fill in log(1+I) per in-plane
  distance from the peak, over the gap-through-peak patches (one slab ≤ 4 px) of ``--data DIR ...``.

    python benchmarks/inpaint_narrow_gaps.py [--model FILE.keras] [--only regimes bins shrink heldout radial falloff databias]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inpaint_quality import REAL, gap_mask, like_measured, peak_centre

from napari_bcdi_dl.core.gaps import extract_windows, gap_pcc, stitch_windows, window_origins
from napari_bcdi_dl.models import inpaint as ip

VARIANTS = {"as measured": {}, "oversampling 3.5": {"oversampling": (3.5,) * 3},
            "oversampling 4.5": {"oversampling": (4.5,) * 3}, "1e8 photons": {"max_counts": 1e8},
            "1e5 photons": {"max_counts": 1e5}, "Wulff shape": {"shape": "wulff"},
            "phase range 8 rad": {"phase_range": 8.0}}
ALPHAS = (0.0, 0.5, 0.75, 1.0, 1.25)


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
        keys = ("patches", "expected", "mask") + (("context",) if ip.has_context(model) else ())
        r = metrics(model, val_batches(load_patches([v], keys=keys), 16))
        print(f"| {Path(v).name} | {r['val_pcc']:.4f} | {r['val_pcc_linear']:.4f} | {r['val_l1']:.4f} | "
              f"{r['val_l1_linear']:.4f} |", flush=True)


RINGS = ((0, 4), (4, 8), (8, 16), (16, 24), (24, 32), (32, 50))


def radial(model) -> None:
    cases = []
    if REAL.exists():
        with np.load(REAL) as f:
            d = np.asarray(f["data"], np.float32)
        cases.append(("measured", d, d))
    e, noisy = like_measured(1)
    cases.append(("like-measured 1", noisy, e))
    print("| pattern | gap | distance (px) | voxels | mean log(1+I) | dl SSE | linear SSE | dl bias | linear bias |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for name, counts, truth in cases:
        c = peak_centre(truth)
        for w in (3, 6):
            d, m = line(truth, counts, w)
            t = np.log1p(truth[m])
            err = {k: np.log1p(ip.inpaint(d, m, method=k, model=model)[m]) - t for k in ("dl", "linear")}
            zz, _, xx = np.nonzero(m)
            r = np.hypot(zz - c[0], xx - c[2])
            for a, b in RINGS:
                s = (r >= a) & (r < b)
                print(f"| {name} | {w} px | {a}–{b} | {s.sum()} | {t[s].mean():.2f} | {np.sum(err['dl'][s] ** 2):.1f} | "
                      f"{np.sum(err['linear'][s] ** 2):.1f} | {err['dl'][s].mean():+.3f} | {err['linear'][s].mean():+.3f} |")


def falloff(model=None) -> None:
    shells = ((4, 6), (8, 12), (16, 20), (24, 28), (30, 32), (36, 40), (45, 56))
    cases = {"like-measured 1, edge σ 0.6": like_measured(1)[0],
             "like-measured 1, edge σ 0.15, blur 0.5": like_measured(1, blur=0.5, edge_sigma=0.15)[0]}
    if REAL.exists():
        with np.load(REAL) as f:
            cases = {"measured": np.asarray(f["data"], np.float32), **cases}
    print("| pattern | " + " | ".join(f"{a}–{b} px" for a, b in shells) + " |\n" + "|---" * (len(shells) + 1) + "|")
    for name, a in cases.items():
        r = np.linalg.norm(np.indices(a.shape) - np.reshape(peak_centre(a), (3, 1, 1, 1)), axis=0)
        cells = []
        for lo, hi in shells:
            v = a[(r >= lo) & (r < hi)]
            med = np.median(v)
            cells.append(f"{med:.3g} ({np.percentile(v, 10) / max(med, 1e-9):.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |")


def databias(dirs, limit: int = 600) -> None:
    from napari_bcdi_dl.core.simulate.datasets import iter_shards, read_manifest

    print("| dataset | distance (px) | gap voxels | mean log(1+I) | truth − linear (mean) | (median) |\n"
          "|---|---|---|---|---|---|")
    for v in dirs:
        r_all, err_all, t_all, n = [], [], [], 0
        centre = read_manifest(v)["size"] // 2  # the pattern centre, where the Bragg peak is
        for shard in iter_shards(v, keys=["patches", "expected", "mask", "params"]):
            for noisy, e, m, par in zip(shard["patches"], shard["expected"], shard["mask"], shard["params"]):
                slabs = par.get("patch_gap", {}).get("slabs", [])
                if par.get("patch_position") != "gap_through_peak" or len(slabs) != 1 or slabs[0][2] > 4:
                    continue
                x, lo, sc = ip.encode_windows(noisy[None] * (1 - m[None]), m[None])
                g = m.astype(bool)
                err_all.append((ip.encode_target(e[None], lo, sc)[0] - x[0, ..., 0])[g] * sc[0])
                other = [a for a in range(3) if a != slabs[0][0]]
                idx = np.argwhere(g)[:, other] + np.asarray(par["patch_origin"])[other]
                r_all.append(np.hypot(*(idx - centre).T))
                t_all.append(np.log1p(e[g]))
                n += 1
            if n >= limit:
                break
        if not n:
            print(f"| {Path(v).name} | no gap-through-peak patch with one slab ≤ 4 px | | | | |")
            continue
        r, err, t = (np.concatenate(a) for a in (r_all, err_all, t_all))
        for a, b in RINGS:
            s = (r >= a) & (r < b)
            if s.any():
                print(f"| {Path(v).name} ({n} patches) | {a}–{b} | {s.sum()} | {t[s].mean():.2f} | "
                      f"{err[s].mean():+.3f} | {np.median(err[s]):+.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help=".keras file (default: the shipped model)")
    ap.add_argument("--only", nargs="+", default=["regimes", "bins", "shrink", "heldout"],
                    choices=("regimes", "bins", "shrink", "heldout", "radial", "falloff", "databias"))
    ap.add_argument("--val", nargs="+", default=[f"runs/data/{v}" for v in ("val64_s901", "val64_p903", "val64_r943")],
                    help="held-out dataset folders (heldout; skipped when missing)")
    ap.add_argument("--data", nargs="+", default=["runs/data/train64_r41"],
                    help="training dataset folders (databias)")
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
        elif part == "databias":
            databias([v for v in args.data if Path(v).is_dir()])
        else:
            globals()[part](model)


if __name__ == "__main__":
    main()
