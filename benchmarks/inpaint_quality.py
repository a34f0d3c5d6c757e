"""Quality of the inpainting model against the baselines: the table of docs/models.md.

Run: ``.venv/bin/python benchmarks/inpaint_quality.py [--n 4] [--size 64] [--step 4] [--model FILE]``

PCC of log(1 + I) inside the gap, for gap widths 3/6/9/12 px, a line (rows) and a cross (rows and
columns of the same width), each through the Bragg peak (1 voxel off-centre, as a detector gap falls):

* **simulated, held out**: ``--n`` patterns of ``--size``³ drawn like the training patterns
  (``core.simulate.datasets.draw_inpaint_pattern``) from seeds ``SeedSequence([7777, i])`` that no
  training set uses, Poisson noise from a fixed seed; scored against the noise-free expected intensity
  (``vs exp``) and against the noisy counts (``vs noisy``), averaged over patterns;
  and against the noise-free intensity on the gap voxels of the 32³ cube centred on the peak only
  (``vs exp, peak 32³``: one window with the gap through the middle and signal everywhere, the kind of
  patch the published figures were scored on; an approximation of their protocol, not a copy of it);
* **simulated like the measured pattern**: ``--n`` rounded, weakly strained crystals (``shape="rounded"``,
  phase ranges 0.5–3 rad) with the measured pattern's oversampling (2.6, 3.7, 2.3) and peak counts
  (6·10⁶), the case the faceted, mostly strained training patterns of the first models missed;
  scored against the noise-free and the noisy intensity;
* **the same, sharp-edged and partially coherent**: edge width 0.15 voxel instead of 0.6 and the
  noise-free intensity blurred by a 0.5-voxel Gaussian, which gives the measured pattern's slow fall-off
  and filled fringe minima (``docs/simulation.md``, *edge σ*);
* **measured**: ``../shared/data/cdinn_exp_crop64.npz`` with the same artificial gaps, scored against
  the measured counts (the only truth there is).

Every method runs on the same arrays in the same process: the shipped model (``dl``, step ``--step``)
and the ``linear | cubic | nearest | idw`` fills of ``core.gap_fill.fill_baseline``. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from napari_bcdi_dl.core.gaps import gap_pcc
from napari_bcdi_dl.models.inpaint import inpaint

METHODS = ("dl", "linear", "cubic", "nearest", "idw")
WIDTHS = (3, 6, 9, 12)
PUBLISHED = {3: 0.989, 6: 0.977, 9: 0.955, 12: 0.946}
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cdinn_exp_crop64.npz"


def gap_mask(shape, width: int, kind: str, centre) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    c1, c2 = round(centre[1]) + 1, round(centre[2]) + 1
    a1, a2 = c1 - width // 2, c2 - width // 2
    m[:, max(a1, 0):a1 + width, :] = 1
    if kind == "cross":
        m[:, :, max(a2, 0):a2 + width] = 1
    return m


def peak_centre(a: np.ndarray):
    return np.unravel_index(int(np.argmax(a)), a.shape)


def peak_cube(shape, centre, size: int = 32) -> np.ndarray:
    """The ``size``³ cube centred on the peak (clipped to the array), as a uint8 mask."""
    cube = np.zeros(shape, np.uint8)
    cube[tuple(slice(max(int(c) - size // 2, 0), int(c) + size // 2) for c in centre)] = 1
    return cube


def run_case(noisy, truths: dict, m, model, step) -> dict:
    """Inpaint with every method; score ``gap_pcc`` against each truth. A truth is an array (scored on the
    whole gap) or a pair (array, region): scored on the gap voxels inside the region only."""
    data = np.where(m == 1, 0, noisy).astype(np.float32)
    out = {}
    for meth in METHODS:
        t0 = time.perf_counter()
        filled = inpaint(data, m, method=meth, step=step, model=model if meth == "dl" else None)
        dt = time.perf_counter() - t0
        out[meth] = {k: gap_pcc(filled, t[0], m & t[1]) if isinstance(t, tuple) else gap_pcc(filled, t, m)
                     for k, t in truths.items()}
        out[meth]["time_s"] = dt
    return out


def table(title: str, results: dict, keys) -> str:
    lines = [f"**{title}**", "", "| gap | truth | " + " | ".join(METHODS) + " | published |",
             "|---|---|" + "---|" * (len(METHODS) + 1)]
    for kind in ("line", "cross"):
        for w in WIDTHS:
            for key in keys:
                cell = results[(kind, w)]
                vals = [np.mean([c[m][key] for c in cell]) for m in METHODS]
                best = int(np.argmax(vals))
                txt = [f"**{v:.4f}**" if i == best else f"{v:.4f}" for i, v in enumerate(vals)]
                pub = f"{PUBLISHED[w]:.3f}" if kind == "line" and key == keys[0] else ""
                lines.append(f"| {kind} {w} px | {key} | " + " | ".join(txt) + f" | {pub} |")
    return "\n".join(lines)


#: The like-measured crystals: rounded, the measured pattern's oversampling and peak counts.
LIKE = {"shape": "rounded", "oversampling": (2.6, 3.7, 2.3), "max_counts": 6e6}


def like_measured(i: int, size: int = 64, blur: float = 0.0, **change) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free and Poisson intensity of like-measured pattern ``i`` (seed 7,778,000 + i, never used in
    training); ``change`` replaces ``simulate_pattern`` arguments (e.g. ``edge_sigma``), ``blur`` (voxels)
    smooths the noise-free intensity before the Poisson draw (partial coherence fills the fringe minima)."""
    from scipy.ndimage import gaussian_filter

    from napari_bcdi_dl.core.simulate import simulate_pattern

    kw = {**LIKE, "field": ("gaussian_bumps", "cosines")[i % 2], "phase_range": (0.5, 2.0, 1.0, 3.0)[i % 4]}
    kw.update(change)
    e = simulate_pattern(size, seed=7778_000 + i, noise=False, compute_phase=False, **kw).expected
    e = e.astype(np.float32)
    if blur > 0:
        e = gaussian_filter(e, blur, mode="nearest").astype(np.float32)
    return e, np.random.default_rng([7778, i, 1]).poisson(e).astype(np.float32)


def like_measured_cases(n: int, size: int, model, step: int, **kw) -> dict:
    """:func:`like_measured` patterns 0..n-1 (``kw``: ``blur``, ``edge_sigma``...) with every gap."""
    out: dict = {(k, w): [] for k in ("line", "cross") for w in WIDTHS}
    for i in range(n):
        expected, noisy = like_measured(i, size, **kw)
        c = peak_centre(expected)
        truths = {"vs exp": expected, "vs noisy": noisy}
        for kind in ("line", "cross"):
            for w in WIDTHS:
                out[(kind, w)].append(run_case(noisy, truths, gap_mask(expected.shape, w, kind, c), model, step))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4, help="simulated patterns per gap setting")
    ap.add_argument("--size", type=int, default=64, choices=(64, 128))
    ap.add_argument("--step", type=int, default=4)
    ap.add_argument("--model", default=None, help=".keras file (default: the shipped model)")
    ap.add_argument("--json", default=None, help="also write the raw results there")
    args = ap.parse_args()
    from napari_bcdi_dl.core.simulate.datasets import draw_inpaint_pattern
    from napari_bcdi_dl.models.registry import load_model, model_card

    model = load_model(args.model or "inpaint")
    card = None if args.model else model_card("inpaint")
    print(f"# inpainting quality, {platform.machine()} {os.cpu_count()} CPUs, step {args.step}, "
          f"model {'shipped' if card else args.model} (step {card and card.get('step')})")

    sim: dict = {(k, w): [] for k in ("line", "cross") for w in WIDTHS}
    t0 = time.perf_counter()
    for i in range(args.n):
        p = draw_inpaint_pattern(args.size, np.random.SeedSequence([7777, i]))
        expected = p.expected.astype(np.float32)
        noisy = np.random.default_rng([7777, i, 1]).poisson(expected).astype(np.float32)
        c = peak_centre(expected)
        cube = peak_cube(expected.shape, c)
        truths = {"vs exp": expected, "vs noisy": noisy, "vs exp, peak 32³": (expected, cube)}
        for kind in ("line", "cross"):
            for w in WIDTHS:
                m = gap_mask(expected.shape, w, kind, c)
                sim[(kind, w)].append(run_case(noisy, truths, m, model, args.step))
        print(f"# pattern {i + 1}/{args.n} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    print()
    print(table(f"Simulated, held out ({args.n} patterns of {args.size}³, PCC of log(1+I) in the gap)",
                sim, ("vs exp", "vs noisy", "vs exp, peak 32³")))

    like = like_measured_cases(args.n, args.size, model, args.step)
    print()
    print(table(f"Simulated like the measured pattern ({args.n} rounded, weakly strained crystals, "
                f"{args.size}³)", like, ("vs exp", "vs noisy")))
    sharp = like_measured_cases(args.n, args.size, model, args.step, edge_sigma=0.15, blur=0.5)
    print()
    print(table(f"Simulated like the measured pattern, sharp edges and partial coherence ({args.n} "
                f"crystals, {args.size}³, edge σ 0.15, blur 0.5)", sharp, ("vs exp", "vs noisy")))

    real = {}
    if REAL.exists():
        with np.load(REAL) as f:
            data = np.asarray(f["data"], np.float32)
        c = peak_centre(data)
        truths = {"vs measured": data, "vs measured, peak 32³": (data, peak_cube(data.shape, c))}
        for kind in ("line", "cross"):
            for w in WIDTHS:
                real[(kind, w)] = [run_case(data, truths, gap_mask(data.shape, w, kind, c), model, args.step)]
        print()
        print(table("Measured cdinn_exp_crop64 (64³), artificial gaps through the peak", real,
                    ("vs measured", "vs measured, peak 32³")))
    if args.json:
        def ser(d):
            return {f"{k[0]}_{k[1]}": v for k, v in d.items()}

        Path(args.json).write_text(json.dumps({"simulated": ser(sim), "like_measured": ser(like),
                                               "like_measured_sharp": ser(sharp),
                                               "measured": ser(real),
                                               "args": vars(args)}, indent=1))


if __name__ == "__main__":
    main()
