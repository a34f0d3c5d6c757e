"""What gap inpainting does to the reconstruction: phase, displacement and strain in real space (issue 21).

The protocol of Carnis et al. (Sci. Rep. 9, 17357, 2019), in two parts, fixed seeds, every method on the same
arrays in one process:

``--part oracle`` (the oracle phase)
    A zero-phase crystal: ``--n`` simulated shapes (``core.simulate``, seeds ``SeedSequence([2121, i])``, never
    used in training; ``wulff | winterbottom | cube_cuts | hull`` in turn, oversampling 2.5–4 per axis, peak
    10⁶ photons) and, when ``../shared/data/cdinn_exp_crop64.npz`` is there, the *measured* modulus: the
    modulus of the project's conventional reconstruction of that pattern (``core.phasing.phase``, defaults,
    3 runs, best free LLK) with its phase set to 0. Its far field ``F`` (project convention) gives the
    noise-free intensity, the true reciprocal phase and Poisson counts. A cross gap (a band of detector rows
    and a band of columns, ``core.simulate.gap_mask``) of 3 / 6 / 9 / 12 px, either *through* the Bragg
    peak (centred 1 voxel off it, as in ``inpaint_quality.py``) or *beside* it (near edge 3 voxels from it).
    The inpainters see the Poisson counts with the gap zeroed: ``dl`` (the shipped model through
    ``models.inpaint.inpaint``, step 4), ``linear`` and ``pchip`` (``core.gap_fill``'s ``linear`` and
    ``cubic``); ``masked`` leaves the gap at 0. The object is ``iFFT(A · exp(i·phase(F)))`` with ``A`` the
    true (noise-free) amplitude outside the gap and the square root of the filled counts (0 for
    ``masked``) inside, so the only error left is the gap's. Its phase, displacement and strain inside
    the true support (``core.postprocess``: unwrap, ramp and mean removed; Pt 111, 10-nm voxels) are
    compared with zero: RMSE of the phase (rad), of the displacement (pm) and of the strain (10⁻⁴),
    the strain pooled over the three axis directions (the gap artefacts are not along one direction and
    ``G`` may point anywhere in the detector frame).

``--part phasing`` (real phasing)
    ``--n`` low-strain simulated crystals (phase range 0.5–1.5 rad, oversampling 3, 10⁶ photons, Poisson
    noise; seeds ``SeedSequence([2122, i])``), each phased by the project's conventional route
    (``core.phasing.phase``, its default recipe and support settings, ``--runs`` runs, best free LLK) without
    a gap (the reference: does conventional phasing solve it?), then with a cross gap through the peak
    (``--placement beside``: beside it) left free (``masked``: the gap is in the mask) or filled by ``dl`` /
    ``linear`` and then taken as measured (no mask), or (``dl-free``, with ``--methods``) filled by DL and
    phased as measured, then refined from that result with the gap free (``HIO**200, ER**200``, shrink-wrap
    at 0.1 of the maximum, the DL pipeline's hand-over of a filled gap). Error against
    the truth after registration (``core.metrics.compare`` / ``register_to``: twin, sub-voxel shift, global
    phase): the complex error, the phase RMSE of the crystal core, and the RMSE of the strain (as above,
    inside the true support, against the truth's strain).

``--part dl`` (DL phasing after inpainting: how to hand the filled gap to it)
    ``--n`` simulated crystals of the DL pipeline's reliable range (phase range 0.5π–2π, oversampling 3,
    10⁶ photons, Poisson noise; seeds ``SeedSequence([2123, i])``), a cross gap of ``--dl-widths`` px through
    the peak, the DL pipeline (``models.dl_phasing``: prediction, then its default refinement) given
    ``zeros``: the gap zeroed and in the mask (zero in the network input, free in the refinement);
    ``filled``: the DL-inpainted pattern and no mask (the fill taken as measured everywhere);
    ``filled+free``: the DL-inpainted pattern as the network's input, the gap free in the refinement.
    Scored as ``--part phasing`` (error, phase RMSE, strain RMSE against the truth, match).

``--part photons``
    Why the fills differ: the photons each fill puts in the gap over the true (noise-free) ones, over all
    gap voxels and over the brightest 1 % of them, on the first ``--n`` (3) oracle crystals.

``--part profile``
    Where the photons go: on oracle crystal 0 with a ``--dl-widths`` (first) px cross gap beside the peak,
    the intensity along the line through the peak across the gap, and the fill / true photons of the gap
    voxels by distance from the peak (10 s).

``--figure PNG --results A.json B.json``: the figure (strain RMSE against gap width, one curve per method)
and the Markdown tables from saved results.

On the 2-core development machine at nice 10, shared with a training job: oracle 7 min (8 crystals and the
measured modulus), phasing 22 min (4 crystals, 52 phasing calls of 3 runs), photons 1 min.

    nice -n 10 .venv/bin/python benchmarks/inpaint_real_space.py --part oracle --json runs/rs_oracle.json
    nice -n 10 .venv/bin/python benchmarks/inpaint_real_space.py --part phasing --json runs/rs_phasing.json
    nice -n 10 .venv/bin/python benchmarks/inpaint_real_space.py --part phasing --placement beside \\
        --json runs/rs_phasing_beside.json
    nice -n 10 .venv/bin/python benchmarks/inpaint_real_space.py --part photons --json runs/rs_photons.json
    .venv/bin/python benchmarks/inpaint_real_space.py --figure docs/img/inpaint_real_space.png \\
        --results runs/rs_oracle.json runs/rs_phasing.json runs/rs_photons.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.postprocess import postprocess, strain
from napari_bcdi_dl.core.simulate import far_field, gap_mask

WIDTHS = (3, 6, 9, 12)
METHODS = ("masked", "dl", "linear", "pchip")
#: Methods of the phasing part (``dl-free``: filled by DL, phased, then refined with the gap free).
PHASING_METHODS = ("masked", "dl", "linear", "dl-free")
#: How tables and the figure name the methods.
LABELS = {"dl": "DL", "pchip": "PCHIP", "dl-free": "DL then free"}
PLACEMENTS = ("through", "beside")
SHAPES = ("wulff", "winterbottom", "cube_cuts", "hull")
#: Pt 111 with 10-nm voxels: strain in true units (the ratios between methods do not depend on them).
HKL, LATTICE_NM, VOXEL_NM = (1, 1, 1), 0.3924, 10.0
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cdinn_exp_crop64.npz"
_FILL = {"dl": "dl", "linear": "linear", "pchip": "cubic"}


@dataclass
class Crystal:
    """A crystal and its far field: ``obj`` complex64 centred, ``support`` uint8, ``expected`` noise-free
    intensity (photons), ``counts`` Poisson draw of it, ``reciprocal_phase`` phase of the far field."""

    name: str
    obj: np.ndarray
    support: np.ndarray
    expected: np.ndarray
    counts: np.ndarray
    reciprocal_phase: np.ndarray


def crystal_from_object(name: str, obj: np.ndarray, support: np.ndarray, seed, max_counts: float = 1e6) -> Crystal:
    """Far field of ``obj`` scaled to ``max_counts`` photons at the peak, with Poisson counts from ``seed``."""
    f = far_field(np.asarray(obj, np.complex64), workers=1)
    scale = np.sqrt(max_counts / float(np.max(np.abs(f) ** 2)))
    f = f * np.float32(scale)
    expected = (np.abs(f) ** 2).astype(np.float32)
    counts = np.random.default_rng(seed).poisson(expected).astype(np.float32)
    return Crystal(name, (np.asarray(obj) * scale).astype(np.complex64), np.asarray(support, np.uint8), expected,
                   counts, np.angle(f).astype(np.float32))


def zero_phase_crystal(i: int, size: int = 64) -> Crystal:
    """Simulated crystal ``i`` (shape family ``SHAPES[i % 4]``) with its phase set to 0."""
    from napari_bcdi_dl.core.simulate import simulate_pattern

    rng = np.random.default_rng(np.random.SeedSequence([2121, i]))
    p = simulate_pattern(size, seed=rng, shape=SHAPES[i % len(SHAPES)], phase_range=0.0,
                         oversampling=tuple(rng.uniform(2.5, 4.0, 3)), noise=False, compute_phase=False,
                         workers=1)
    return crystal_from_object(f"sim {i} ({p.params['shape']})", np.abs(p.obj), p.support, [2121, i, 1])


def measured_crystal(path: Path = REAL, runs: int = 3) -> Crystal:
    """The modulus of the conventional reconstruction of the measured pattern, phase set to 0."""
    from napari_bcdi_dl.core.phasing import phase

    data = np.load(path)["data"].astype(np.float32)
    best = phase(data, runs=runs, seed=0).best
    return crystal_from_object("measured modulus", np.abs(best.obj), best.support, [2121, 999, 1],
                               max_counts=float(data.max()))


def cross_mask(shape, peak, width: int, placement: str = "through") -> np.ndarray:
    """uint8 cross gap (rows and columns, ``width`` px each) through the peak (centred 1 voxel off it) or
    beside it (rows from 3 voxels above, columns up to 3 voxels left of it)."""
    c1, c2 = int(peak[1]), int(peak[2])
    if placement == "through":
        slabs = [(1, c1 + 1 - width // 2, width), (2, c2 + 1 - width // 2, width)]
    elif placement == "beside":
        slabs = [(1, c1 + 3, width), (2, c2 - 2 - width, width)]
    else:
        raise BCDIError(f"gap placement {placement!r}: use 'through' or 'beside'")
    return gap_mask(shape, slabs)


def fill(counts: np.ndarray, mask: np.ndarray | None, method: str, model=None, step: int = 4) -> np.ndarray:
    """The counts with the gap zeroed (``masked``) or inpainted by ``dl | linear | pchip``."""
    if mask is None or not np.any(mask):
        return np.asarray(counts, np.float32).copy()
    m = np.asarray(mask).astype(bool)
    data = np.where(m, 0, counts).astype(np.float32)
    if method == "masked":
        return data
    if method not in _FILL:
        raise BCDIError(f"fill method {method!r}: use one of {', '.join(METHODS)}")
    from napari_bcdi_dl.models.inpaint import inpaint

    return inpaint(data, m, method=_FILL[method], step=step, model=model if method == "dl" else None)


def oracle_object(c: Crystal, mask: np.ndarray | None = None, filled: np.ndarray | None = None) -> np.ndarray:
    """``iFFT(A · exp(i·true phase))``: ``A`` the true amplitude, replaced in the gap by ``sqrt(filled)``
    (0 where ``filled`` is None). No gap: the crystal itself, up to rounding."""
    amp = np.sqrt(c.expected.astype(np.float64))
    if mask is not None:
        m = np.asarray(mask).astype(bool)
        amp[m] = 0.0 if filled is None else np.sqrt(np.maximum(np.asarray(filled, np.float64)[m], 0))
    f = amp * np.exp(1j * c.reciprocal_phase.astype(np.float64))
    return np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(f))).astype(np.complex64)


def _fields(obj: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    r = postprocess(obj, support, hkl=HKL, lattice_nm=LATTICE_NM, voxel_size_nm=(VOXEL_NM,) * 3,
                    g_direction=(1.0, 0.0, 0.0))
    period = 2 * np.pi / r.g_norm
    eps = [r.strain.astype(np.float64)] + [
        strain(r.displacement, r.support, r.voxel_size, g, period=period) for g in ((0, 1, 0), (0, 0, 1))]
    return r.phase.astype(np.float64), r.displacement.astype(np.float64), eps


def real_space_errors(obj: np.ndarray, support: np.ndarray, reference: np.ndarray | None = None) -> dict:
    """RMSE inside ``support`` of phase (rad), displacement (pm) and strain (10⁻⁴, pooled over the three
    axis directions) of ``obj`` against zero, or against ``reference`` processed the same way."""
    s = np.asarray(support) != 0
    ph, u, eps = _fields(obj, s)
    if reference is not None:
        rph, ru, reps = _fields(reference, s)
        ph, u, eps = ph - rph, u - ru, [a - b for a, b in zip(eps, reps)]
    return {"phase": float(np.sqrt(np.mean(ph[s] ** 2))),
            "displacement": 1e3 * float(np.sqrt(np.mean(u[s] ** 2))),
            "strain": 1e4 * float(np.sqrt(np.mean([np.mean(e[s] ** 2) for e in eps])))}


def oracle_case(c: Crystal, mask: np.ndarray | None, method: str, model=None, step: int = 4) -> dict:
    """One oracle-phase case: fill, rebuild the object with the true phase, measure it against zero."""
    filled = None if method == "masked" or mask is None else fill(c.counts, mask, method, model, step)
    return real_space_errors(oracle_object(c, mask, filled), c.support)


# ------------------------------------------------------------------------------------------------- parts
def run_oracle(n: int, model, step: int, measured: bool, save=None) -> list[dict]:
    crystals = [zero_phase_crystal(i) for i in range(n)]
    if measured and REAL.exists():
        t0 = time.perf_counter()
        crystals.append(measured_crystal())
        print(f"measured modulus reconstructed in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []
    for c in crystals:
        peak = np.unravel_index(int(np.argmax(c.expected)), c.expected.shape)
        floor = oracle_case(c, None, "masked")
        rows.append({"crystal": c.name, "placement": "none", "width": 0, "method": "none", **floor})
        for placement in PLACEMENTS:
            for w in WIDTHS:
                m = cross_mask(c.expected.shape, peak, w, placement)
                for meth in METHODS:
                    t0 = time.perf_counter()
                    r = oracle_case(c, m, meth, model, step)
                    rows.append({"crystal": c.name, "placement": placement, "width": w, "method": meth, **r,
                                 "time_s": time.perf_counter() - t0})
                print(f"{c.name} {placement} {w} px: " + ", ".join(
                    f"{x['method']} {x['strain']:.3f}" for x in rows[-len(METHODS):]), flush=True)
        if save is not None:  # after each crystal: a long run interrupted keeps what it has
            save(rows)
    return rows


def phasing_crystal(i: int, size: int = 64):
    from napari_bcdi_dl.core.simulate import simulate_pattern

    rng = np.random.default_rng(np.random.SeedSequence([2122, i]))
    return simulate_pattern(size, seed=rng, shape=SHAPES[i % len(SHAPES)], field="gaussian_bumps",
                            phase_range=float(rng.uniform(0.5, 1.5)), oversampling=3.0, max_counts=1e6,
                            noise=True, workers=1)


def phasing_case(p, data: np.ndarray, mask, runs: int, seed: int, then_free=None) -> dict:
    """Conventional phasing of ``data`` (``mask`` free); with ``then_free``, the best run refined again with
    that mask free (a fill taken as measured first, then let go)."""
    from napari_bcdi_dl.core.metrics import compare, is_match, register_to
    from napari_bcdi_dl.core.phasing import phase
    from napari_bcdi_dl.core.phasing.refine import REFINE_RECIPES, refine

    t0 = time.perf_counter()
    best = phase(data, mask, runs=runs, seed=seed).best
    if then_free is not None:
        best = refine(data, best.obj, best.support, then_free, recipe=REFINE_RECIPES["hio-er"],
                      support_method="max", support_threshold=0.1, early_stop=50, seed=seed)
    cmp = compare(p.obj, best.obj, p.support, best.support)
    aligned = register_to(p.obj, best.obj, p.support, best.support)["aligned"]
    rs = real_space_errors(aligned, p.support, reference=p.obj)
    llk_free = None if best.llk_free is None else float(best.llk_free)
    return {"error": cmp["error"], "phase_rmse": cmp["phase_rmse"], "match": is_match(cmp), "twin": cmp["twin"],
            "llk_free": llk_free, **{f"rs_{k}": v for k, v in rs.items()}, "time_s": time.perf_counter() - t0}


def run_phasing(n: int, model, step: int, runs: int, placement: str = "through", save=None,
                methods=PHASING_METHODS[:3]) -> list[dict]:
    rows = []
    for i in range(n):
        p = phasing_crystal(i)
        name = f"sim {i} ({p.params['shape']}, {p.params['phase_range']:.2f} rad)"
        r = phasing_case(p, p.intensity, None, runs, i)
        rows.append({"crystal": name, "placement": placement, "width": 0, "method": "no gap", **r})
        print(f"{name} no gap: error {r['error']:.3f} strain {r['rs_strain']:.3f} match {r['match']}", flush=True)
        peak = np.unravel_index(int(np.argmax(p.expected)), p.expected.shape)
        for w in WIDTHS:
            m = cross_mask(p.intensity.shape, peak, w, placement)
            for meth in methods:
                data = fill(p.intensity, m, meth.removesuffix("-free"), model, step)
                r = phasing_case(p, data, m if meth == "masked" else None, runs, i,
                                 then_free=m if meth.endswith("-free") else None)
                rows.append({"crystal": name, "placement": placement, "width": w, "method": meth, **r})
                print(f"  {w} px {meth}: error {r['error']:.3f} phase {r['phase_rmse']:.3f} "
                      f"strain {r['rs_strain']:.3f} ({r['time_s']:.0f} s)", flush=True)
        if save is not None:  # after each crystal: a long run interrupted keeps what it has
            save(rows)
    return rows


def dl_crystal(i: int, size: int = 64):
    from napari_bcdi_dl.core.simulate import simulate_pattern

    rng = np.random.default_rng(np.random.SeedSequence([2123, i]))
    return simulate_pattern(size, seed=rng, shape=SHAPES[i % len(SHAPES)],
                            phase_range=float(rng.uniform(0.5, 2.0)) * np.pi, oversampling=3.0, max_counts=1e6,
                            noise=True, workers=1)


def dl_case(p, data: np.ndarray, predict_mask, refine_mask) -> dict:
    from napari_bcdi_dl.core.metrics import compare, is_match, register_to
    from napari_bcdi_dl.models.dl_phasing import DEFAULT_CANDIDATES, predict_object, refine_prediction

    t0 = time.perf_counter()
    pred = predict_object(data, predict_mask, keep=DEFAULT_CANDIDATES)
    rec = refine_prediction(data, refine_mask, pred)
    cmp = compare(p.obj, rec.obj, p.support, rec.support)
    aligned = register_to(p.obj, rec.obj, p.support, rec.support)["aligned"]
    rs = real_space_errors(aligned, p.support, reference=p.obj)
    return {"error": cmp["error"], "phase_rmse": cmp["phase_rmse"], "match": is_match(cmp),
            "llk_free": None if rec.llk_free is None else float(rec.llk_free),
            **{f"rs_{k}": v for k, v in rs.items()}, "time_s": time.perf_counter() - t0}


def run_dl(n: int, model, step: int, widths, save=None) -> list[dict]:
    rows = []
    for i in range(n):
        p = dl_crystal(i)
        name = f"sim {i} ({p.params['shape']}, {p.params['phase_range'] / np.pi:.2f}π)"
        r = dl_case(p, p.intensity, None, None)
        rows.append({"crystal": name, "placement": "through", "width": 0, "method": "no gap", **r})
        print(f"{name} no gap: error {r['error']:.3f} strain {r['rs_strain']:.3f} match {r['match']}", flush=True)
        peak = np.unravel_index(int(np.argmax(p.expected)), p.expected.shape)
        for w in widths:
            m = cross_mask(p.intensity.shape, peak, w, "through")
            zeros, filled = fill(p.intensity, m, "masked"), fill(p.intensity, m, "dl", model, step)
            for meth, data, pm, rm in (("zeros", zeros, m, m), ("filled", filled, None, None),
                                       ("filled+free", filled, None, m)):
                r = dl_case(p, data, pm, rm)
                rows.append({"crystal": name, "placement": "through", "width": w, "method": meth, **r})
                print(f"  {w} px {meth}: error {r['error']:.3f} phase {r['phase_rmse']:.3f} "
                      f"strain {r['rs_strain']:.3f} match {r['match']} ({r['time_s']:.0f} s)", flush=True)
        if save is not None:
            save(rows)
    return rows


def dl_table(rows: list[dict]) -> str:
    out = ["| gap | handed to DL | solved | mean error | mean strain RMSE (10⁻⁴) |", "|---|---|---|---|---|"]
    keys = sorted({(r["width"], r["method"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for w, meth in keys:
        sel = [r for r in rows if r["width"] == w and r["method"] == meth]
        out.append(f"| {w} px | {meth} | {sum(bool(r['match']) for r in sel)}/{len(sel)} | "
                   f"{np.mean([r['error'] for r in sel]):.3f} | {np.mean([r['rs_strain'] for r in sel]):.2f} |")
    return "\n".join(out)


def run_photons(n: int, model, step: int) -> list[dict]:
    """Photons the fills put in the gap, over the true ones: all gap voxels, and the brightest 1 % of them."""
    rows = []
    for i in range(n):
        c = zero_phase_crystal(i)
        peak = np.unravel_index(int(np.argmax(c.expected)), c.expected.shape)
        for placement in PLACEMENTS:
            for w in WIDTHS:
                m = cross_mask(c.expected.shape, peak, w, placement).astype(bool)
                t = c.expected[m].astype(np.float64)
                top = t >= np.quantile(t, 0.99)
                for meth in ("dl", "linear", "pchip"):
                    f = fill(c.counts, m, meth, model, step)[m].astype(np.float64)
                    rows.append({"crystal": c.name, "placement": placement, "width": w, "method": meth,
                                 "all": float(f.sum() / t.sum()), "top": float(f[top].sum() / t[top].sum())})
    return rows


def run_profile(model, step: int, width: int) -> list[dict]:
    """Crystal 0, a ``width``-px cross gap beside the peak: the line through the peak across the gap and the
    fill / true photons by distance from the peak, for each fill."""
    c = zero_phase_crystal(0)
    z, y, x = (int(v) for v in np.unravel_index(int(np.argmax(c.expected)), c.expected.shape))
    m = cross_mask(c.expected.shape, (z, y, x), width, "beside").astype(bool)
    line = slice(y, y + 4 + width + 3)
    d = np.linalg.norm(np.argwhere(m) - np.array([z, y, x]), axis=1)
    bins = ((0, 6), (6, 10), (10, 16), (16, 30), (30, 200))
    t = c.expected[m].astype(np.float64)
    in_bin = {f"{lo}-{hi}": (d >= lo) & (d < hi) for lo, hi in bins}
    rows = [{"method": "true", "line": c.expected[z, line, x].tolist()}]
    for meth in ("dl", "linear", "pchip"):
        f = fill(c.counts, m, meth, model, step)
        fm = f[m].astype(np.float64)
        ratios = {k: float(fm[sel].sum() / t[sel].sum()) for k, sel in in_bin.items()}
        rows.append({"method": meth, "line": f[z, line, x].tolist(), "ratio": ratios})
    return rows


def profile_table(rows: list[dict], width: int) -> str:
    n, bins = len(rows[0]["line"]), list(rows[1]["ratio"])
    out = [f"Crystal 0, {width}-px cross gap beside the peak (gap from 3 voxels): photons along the line through "
           "the peak across the gap (0 = the peak), then fill / true photons of the gap voxels by distance from "
           "the peak", "", "| | " + " | ".join(map(str, range(n))) + " | " + " | ".join(bins) + " |",
           "|---" * (n + 1 + len(bins)) + "|"]
    for r in rows:
        ratios = [f"{r['ratio'][k]:.2f}" for k in bins] if "ratio" in r else ["—"] * len(bins)
        out.append(f"| {r['method']} | " + " | ".join(f"{v:.2g}" for v in r["line"]) + " | " + " | ".join(ratios)
                   + " |")
    return "\n".join(out)


def photons_table(rows: list[dict]) -> str:
    n = len({r["crystal"] for r in rows})
    out = [(f"Photons in the gap, filled / true, mean over {n} simulated crystals (all gap voxels; the brightest "
           "1 % of them):"), "", "| gap | DL | linear | PCHIP |", "|---|---|---|---|"]
    for placement in PLACEMENTS:
        for w in WIDTHS:
            sel = [r for r in rows if r["placement"] == placement and r["width"] == w]
            out.append(f"| {placement} {w} px | " + " | ".join(
                f"{_mean(sel, method=m, key='all'):.2f}; {_mean(sel, method=m, key='top'):.2f}"
                for m in ("dl", "linear", "pchip")) + " |")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ report
def _mean(rows, **sel) -> float:
    key = sel.pop("key")
    v = [r[key] for r in rows if all(r[k] == x for k, x in sel.items())]
    return float(np.mean(v)) if v else float("nan")


def oracle_table(rows: list[dict]) -> str:
    """The simulated crystals' table (means over them), then the measured modulus's, if it was run."""
    sim = [r for r in rows if r["crystal"].startswith("sim")]
    other = [r for r in rows if not r["crystal"].startswith("sim")]
    return "\n\n".join(_oracle_table(x) for x in (sim, other) if x)


def _oracle_table(rows: list[dict]) -> str:
    crystals = sorted({r["crystal"] for r in rows})
    what = f"{len(crystals)} simulated crystals" if len(crystals) > 1 else crystals[0]
    out = [f"Oracle phase, {what}, mean RMSE inside the support "
           "(no gap: phase {:.1e} rad, strain {:.1e}·10⁻⁴):".format(
               _mean(rows, method="none", key="phase"), _mean(rows, method="none", key="strain")), "",
           ("| gap | strain masked | strain DL | strain linear | strain PCHIP | masked / DL | DL < linear, PCHIP "
           "| phase (rad) masked / DL / linear / PCHIP | displacement (pm) masked / DL / linear / PCHIP |"),
           "|---|---|---|---|---|---|---|---|---|"]
    for placement in PLACEMENTS:
        for w in WIDTHS:
            sel = [r for r in rows if r["placement"] == placement and r["width"] == w]
            s = {m: _mean(sel, method=m, key="strain") for m in METHODS}
            per = {c: {r["method"]: r["strain"] for r in sel if r["crystal"] == c} for c in crystals}
            beats = sum(d["dl"] < min(d["linear"], d["pchip"]) for d in per.values())
            best = min(("dl", "linear", "pchip"), key=s.get)
            cells = [f"**{s[m]:.3f}**" if m == best else f"{s[m]:.3f}" for m in METHODS]
            ph = " / ".join(f"{_mean(sel, method=m, key='phase'):.3f}" for m in METHODS)
            u = " / ".join(f"{_mean(sel, method=m, key='displacement'):.2f}" for m in METHODS)
            ratios = [d["masked"] / d["dl"] for d in per.values()]
            out.append(f"| {placement} {w} px | " + " | ".join(cells) +
                       f" | {s['masked'] / s['dl']:.1f}× (min {min(ratios):.1f}×) | {beats}/{len(per)} | {ph} | {u} |")
    return "\n".join(out)


def phasing_table(rows: list[dict]) -> str:
    crystals = sorted({r["crystal"] for r in rows})
    solved = sum(r["match"] for r in rows if r["method"] == "no gap")
    meths = [m for m in PHASING_METHODS if any(r["method"] == m for r in rows)]
    filled = [m for m in meths if m != "masked"]
    names = {m: LABELS.get(m, m) for m in meths}
    out = [(f"Real phasing, {len(crystals)} crystals (conventional phasing solves {solved}/{len(crystals)} "
           f"without a gap: complex error {_mean(rows, method='no gap', key='error'):.3f}, strain RMSE "
           f"{_mean(rows, method='no gap', key='rs_strain'):.3f}·10⁻⁴), mean over crystals:"), "",
           ("| gap | " + " | ".join(f"strain {names[m]}" for m in meths) + " | "
            + " | ".join(f"{names[m]} < masked (strain; error)" for m in filled)
            + f" | error {' / '.join(names.values())} | phase RMSE (rad) {' / '.join(names.values())} |"),
           "|---" * (3 + len(meths) + len(filled)) + "|"]
    for w in WIDTHS:
        sel = [r for r in rows if r["width"] == w]
        s = {m: _mean(sel, method=m, key="rs_strain") for m in meths}
        per = {c: {r["method"]: r for r in sel if r["crystal"] == c} for c in crystals}
        wins = []
        for m in filled:
            n_s = sum(d[m]["rs_strain"] < d["masked"]["rs_strain"] for d in per.values())
            n_e = sum(d[m]["error"] < d["masked"]["error"] for d in per.values())
            wins.append(f"{n_s}/{len(per)}; {n_e}/{len(per)}")
        best = min(s, key=s.get)
        cells = [f"**{s[m]:.3f}**" if m == best else f"{s[m]:.3f}" for m in s]
        err = " / ".join(f"{_mean(sel, method=m, key='error'):.3f}" for m in s)
        ph = " / ".join(f"{_mean(sel, method=m, key='phase_rmse'):.3f}" for m in s)
        out.append(f"| {w} px | " + " | ".join(cells + wins) + f" | {err} | {ph} |")
    return "\n".join(out)


def figure(path: str, oracle: list[dict] | None, phasing: list[dict] | None) -> None:
    """Strain RMSE against gap width, one curve per method: oracle phase (simulated crystals, solid; the
    measured modulus, dashed) for each placement, then real phasing for each placement that was run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    sim = [r for r in oracle or () if r["crystal"].startswith("sim")]
    meas = [r for r in oracle or () if not r["crystal"].startswith("sim")]
    panels = [(f"oracle phase, gap {p} the peak", [r for r in sim if r["placement"] == p],
               [r for r in meas if r["placement"] == p], METHODS, "strain") for p in PLACEMENTS] if sim else []
    for p in PLACEMENTS:
        sel = [r for r in phasing or () if r["placement"] == p]
        if sel:
            present = [m for m in PHASING_METHODS if any(r["method"] == m for r in sel)]
            panels.append((f"real phasing, gap {p} the peak", sel, [], present, "rs_strain"))
    style = {"masked": ("k", "o"), "dl": ("C3", "s"), "linear": ("C0", "^"), "pchip": ("C2", "v"),
             "dl-free": ("C1", "D")}
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0), squeeze=False)
    for ax, (title, rows, extra, methods, key) in zip(axes[0], panels):
        for m in methods:
            col, mk = style[m]
            ax.plot(WIDTHS, [_mean(rows, method=m, width=w, key=key) for w in WIDTHS], color=col, marker=mk,
                    label=LABELS.get(m, m))
            if extra:
                ax.plot(WIDTHS, [_mean(extra, method=m, width=w, key=key) for w in WIDTHS], color=col,
                        marker=mk, ls="--", lw=0.9, ms=3, alpha=0.8)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="y", which="both", labelsize=7)
        ax.set_xticks(WIDTHS)
        ax.set_xlabel("cross gap width (px)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("strain RMSE (10⁻⁴)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if meas:
        handles.append(Line2D([], [], color="grey", ls="--", lw=0.9))
        labels.append("measured modulus")
    axes[0][0].legend(handles, labels, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("oracle", "phasing", "photons", "dl", "profile"))
    ap.add_argument("--dl-widths", type=int, nargs="+", default=(6, 9), help="gap widths of the dl part")
    ap.add_argument("--n", type=int, default=None, help="simulated crystals (oracle 8, phasing 4, photons 3)")
    ap.add_argument("--runs", type=int, default=3, help="conventional phasing runs per case (best free LLK)")
    ap.add_argument("--step", type=int, default=4, help="DL inpainting step")
    ap.add_argument("--placement", choices=PLACEMENTS, default="through", help="gap placement (phasing part)")
    ap.add_argument("--methods", nargs="+", choices=PHASING_METHODS, default=PHASING_METHODS[:3],
                    help="phasing part: how the gap is given (masked first; default masked dl linear)")
    ap.add_argument("--no-measured", action="store_true", help="oracle part without the measured modulus")
    ap.add_argument("--model", default=None, help="inpainting .keras file (default: the shipped model)")
    ap.add_argument("--json", default=None, help="write the raw results there")
    ap.add_argument("--figure", default=None, help="PNG to draw from --results")
    ap.add_argument("--results", nargs="*", default=(), help="JSON files of earlier --part runs")
    args = ap.parse_args()
    if args.figure:
        loaded = {}
        for f in args.results:
            d = json.loads(Path(f).read_text())
            for r in d["rows"]:
                r.setdefault("placement", "through")
            loaded.setdefault(d["part"], []).extend(d["rows"])
        figure(args.figure, loaded.get("oracle"), loaded.get("phasing"))
        if "oracle" in loaded:
            print(oracle_table(loaded["oracle"]), "\n")
        if "photons" in loaded:
            print(photons_table(loaded["photons"]), "\n")
        for pl in PLACEMENTS:
            sel = [r for r in loaded.get("phasing", ()) if r["placement"] == pl]
            if sel:
                print(f"gap {pl} the peak:", phasing_table(sel), "\n")
        return
    if not args.part:
        ap.error("give --part oracle|phasing, or --figure PNG --results JSON...")
    if args.methods[0] != "masked":
        ap.error("--methods: give masked first (every other method is compared with it)")
    from napari_bcdi_dl.models._keras import keras
    from napari_bcdi_dl.models.registry import load_model

    model = keras().saving.load_model(args.model, compile=False) if args.model else load_model("inpaint")
    t0 = time.perf_counter()

    def save(rows):
        if args.json:
            Path(args.json).write_text(json.dumps({"part": args.part, "args": vars(args), "rows": rows}, indent=1))

    if args.part == "oracle":
        rows = run_oracle(args.n or 8, model, args.step, not args.no_measured, save)
        print(oracle_table(rows))
    elif args.part == "dl":
        rows = run_dl(args.n or 6, model, args.step, args.dl_widths, save)
        print(dl_table(rows))
    elif args.part == "photons":
        rows = run_photons(args.n or 3, model, args.step)
        print(photons_table(rows))
    elif args.part == "profile":
        rows = run_profile(model, args.step, args.dl_widths[0])
        print(profile_table(rows, args.dl_widths[0]))
    else:
        rows = run_phasing(args.n or 4, model, args.step, args.runs, args.placement, save, args.methods)
        print(phasing_table(rows))
    print(f"\n{args.part}: {time.perf_counter() - t0:.0f} s")
    save(rows)


if __name__ == "__main__":
    main()
