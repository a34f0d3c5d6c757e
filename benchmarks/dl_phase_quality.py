"""Quality of DL phasing against the conventional recipe (issue 6, item 7). Fixed seeds, one process.

Simulated strained crystals never seen in training (``simulate_pattern`` with its own seeds; the training
sets come from ``generate_dataset`` sample seeds): ``--n-high`` with phase range 2π–5π and ``--n-low``
low-strain controls (0.5π–2π), size ``--size``, random shape / field / orientation, oversampling 2.5–4.5
per axis, 1e5–1e8 photons at the peak, Poisson noise. For each:

* **DL**: ``predict_object`` (the shipped model, its default test-time augmentation: 8 input flips,
  ranked by LLK after 50 ER on the model grid), then ``refine_prediction`` of the best ``--candidates``
  with each refinement recipe of ``--refine`` (names of ``core.phasing.refine.REFINE_RECIPES`` or recipe
  strings; the same free voxels everywhere), the best candidate by free LLK per recipe; ``combined``: the
  best by free LLK over all recipes and candidates (one pipeline that tries them all); also the unrefined
  prediction and the WCA of the predicted phase on the model grid against the true phase there;
* **conventional**, each route of ``--conv`` (cached per case, they do not depend on the model):
  ``project`` = ``core.phasing.phase`` as a user gets it (default recipe and support settings), ``--runs``
  runs (default 20, as the issue asks), best by free LLK; ``plain`` = ``HIO**400, ER**200``, shrink-wrap at
  0.1 of the maximum (σ 1), no detwin, best of 4 by LLK (the careful baseline measured outside the
  project); ``legacy`` = the first-round default (``HIO**400, RAAR**1000, ER**300``, rms 0.25); also whether
  *any* run succeeded (an oracle choice the user does not have);
* success = ``core.metrics.is_match(compare(truth, result))`` (complex error ≤ 0.25 and phase RMSE ≤ 0.35
  rad in the eroded core, after removing twin, translation, global phase and scale). The same thresholds
  are applied to two controls per case, the truth with a flat phase and with half its phase: on the
  high-strain cases they must fail (the count that pass is printed per group; high strain must be 0).

Cases run interleaved (3 high, 1 low, ...) so that a run cut short still holds both groups; ``--out`` is
rewritten (atomically) after every case, and the conventional results are cached per case in
``--conv-cache`` (they do not depend on the model).

``--real PATH`` (default ``../shared/data/cdinn_exp_crop64.npz``): the measured pattern phased by the DL
pipeline as shipped (one reconstruction), by the pipeline with single network inputs (``tta=1``) from the 8
axis-flips of the pattern (8 different network inputs; objects flipped back) and by ``--runs``
conventional runs: LLK, free LLK (same free voxels everywhere), the agreement between runs (pairwise
``compare`` with a linear phase ramp removed, fraction of pairs that match) and DL against the best
conventional run.

Usage::

    .venv/bin/python benchmarks/dl_phase_quality.py [--size 64] [--n-high 20] [--n-low 6] [--runs 20] \\
        [--refine paper hio-er raar-er] [--candidates 2] [--conv project plain] [--out runs/phase/q.json] \\
        [--skip-conventional] [--real PATH | --no-real]

Prints a markdown table (copied into docs/models.md) and writes every per-case number to ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from napari_bcdi_dl.core.metrics import compare, is_match
from napari_bcdi_dl.core.phasing import phase
from napari_bcdi_dl.core.reciprocal import crop_or_pad, shift_crop
from napari_bcdi_dl.core.simulate import FIELDS, SHAPES, simulate_pattern
from napari_bcdi_dl.models.dl_phasing import (
    DEFAULT_EARLY_STOP,
    DEFAULT_REFINE,
    load_phase_model,
    predict_object,
    refine_prediction,
)
from napari_bcdi_dl.models.phase_training import centre_phase
from napari_bcdi_dl.models.wca import wca_numpy

REPO = Path(__file__).resolve().parents[1]

#: Conventional routes: keyword arguments of ``core.phasing.phase`` (``runs`` None = ``--runs``).
CONV_ROUTES = {
    "project": {"runs": None, "select": "llk_free"},
    "plain": {"recipe": "HIO**400, ER**200", "runs": 4, "support_threshold": 0.1, "support_method": "max",
              "support_sigma": 1.0, "detwin": False, "select": "llk"},
    "legacy": {"recipe": "HIO**400, RAAR**1000, ER**300", "runs": None, "support_threshold": 0.25,
               "support_method": "rms", "support_sigma": (2.0, 0.5), "select": "llk_free"},
    # variants measured to choose the project's default (docs/models.md, "An honest conventional side")
    "legacy-max": {"recipe": "HIO**400, RAAR**1000, ER**300", "runs": None, "support_threshold": 0.1,
                   "support_method": "max", "support_sigma": (2.0, 0.5), "select": "llk_free"},
    "hio-er-rms": {"recipe": "HIO**400, ER**200", "runs": None, "support_threshold": 0.25,
                   "support_method": "rms", "support_sigma": (2.0, 0.5), "select": "llk_free"},
    "hio-er-max": {"recipe": "HIO**400, ER**200", "runs": None, "support_threshold": 0.1,
                   "support_method": "max", "support_sigma": 1.0, "select": "llk_free"},
    # σ of shrink-wrap reaches its final value at iteration 600 and stays (PyNX's smooth_width=(2, 0.5, 600))
    "project-s600": {"runs": None, "support_sigma": (2.0, 0.5, 600), "select": "llk_free"},
}


def make_case(size: int, seed: int, index: int, high: bool):
    rng = np.random.default_rng([seed, index, int(high)])
    pr = rng.uniform(2 * math.pi, 5 * math.pi) if high else rng.uniform(0.5 * math.pi, 2 * math.pi)
    fields = [f for f in FIELDS if high or f != "screw"]
    kw = {"shape": str(rng.choice(list(SHAPES))), "field": str(rng.choice(fields)), "phase_range": float(pr),
          "oversampling": [float(v) for v in rng.uniform(2.5, 4.5, 3)],
          "max_counts": float(10 ** rng.uniform(5, 8)), "edge_sigma": float(rng.uniform(0.3, 1.0))}
    return simulate_pattern(size, seed=rng, noise=True, **kw), kw


def _score(truth, rec_obj, rec_support, truth_support) -> dict:
    c = compare(truth, rec_obj, truth_support, rec_support)
    return {"error": c["error"], "phase_rmse": c["phase_rmse"], "iou": c["iou"], "success": is_match(c)}


def _write_json(path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=float))
    tmp.replace(path)


def _cache(args) -> dict:
    path = Path(args.conv_cache)
    return json.loads(path.read_text()) if path.is_file() else {}


def _cache_put(args, key: str, value) -> None:
    path = Path(args.conv_cache)
    cache = _cache(args)
    cache[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1, default=float))
    tmp.replace(path)


def _route_kwargs(route: str, args) -> dict:
    kw = dict(CONV_ROUTES[route])
    if kw.get("runs") is None:
        kw["runs"] = args.runs
    return kw


def _effective(kw: dict) -> dict:
    """The route's arguments with ``phase``'s defaults filled in: the cache key (a route whose effective
    settings equal another's, e.g. ``project`` after a change of default, shares its cached results)."""
    import inspect

    sig = inspect.signature(phase)
    keys = ("recipe", "support_threshold", "support_method", "support_sigma", "detwin", "runs", "select")
    out = {k: kw.get(k, sig.parameters[k].default) for k in keys}
    out["support_sigma"] = list(out["support_sigma"]) if isinstance(out["support_sigma"], tuple) else out["support_sigma"]
    return out


def conventional(p, args, key: str, route: str = "project") -> dict:
    """A conventional route on a case (cached in ``--conv-cache``: it does not depend on the model)."""
    kw = _route_kwargs(route, args)
    key = f"{key}|{args.size}|{args.seed}|{json.dumps(_effective(kw), sort_keys=True)}"
    cached = _cache(args).get(key)
    if cached is not None:
        return cached
    t0 = time.perf_counter()
    res = phase(p.intensity, seed=args.seed, **kw)
    best = res.best
    seconds = time.perf_counter() - t0
    per_run = [{**_score(p.obj, r.obj, r.support, p.support), "llk": r.llk, "llk_free": r.llk_free}
               for r in res.runs]
    runs_ok = [r["success"] for r in per_run]
    out = {**_score(p.obj, best.obj, best.support, p.support), "llk": best.llk,
           "llk_free": best.llk_free, "seconds": seconds, "best_index": res.best_index,
           "any_run_success": bool(any(runs_ok)), "runs_success": int(sum(runs_ok)), "per_run": per_run}
    _cache_put(args, key, out)
    return out


def run_case(p, kw, args, model, card, key: str) -> dict:
    out = {"params": kw}
    if model is None:  # --only-conventional
        out["conventional"] = {r: conventional(p, args, key, r) for r in args.conv}
        return out
    amp = np.abs(p.obj)
    out["control_flat_passes"] = is_match(compare(p.obj, amp.astype(np.complex64), p.support, p.support))
    half = (amp * np.exp(0.5j * p.phase_field)).astype(np.complex64)
    out["control_half_passes"] = is_match(compare(p.obj, half, p.support, p.support))

    t0 = time.perf_counter()
    pred = predict_object(p.intensity, model=model, card=card, keep=max(args.candidates),
                          grid_refine=_grid(args.grid_refine), **_corrector(args))
    t_pred = time.perf_counter() - t0
    t = pred.transform
    # the true field on the model grid (crop in q, object cropped/padded to the model's field of view), its
    # phase centred as the training targets are (centre_phase), scored like the held-out set
    true_field = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(p.obj)))
    obj_c = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(shift_crop(true_field, t.crop_shape, t.offset))))
    field_m = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(crop_or_pad(obj_c, t.size))))
    target = centre_phase(np.abs(field_m) ** 2, np.angle(field_m))
    out["wca_model_grid"] = wca_numpy(target, pred.phase_model, np.log1p(pred.intensity_model))
    out["zoom"] = [float(z) for z in t.zoom]
    out["dl_unrefined"] = _score(p.obj, pred.obj, pred.support, p.support)
    out["predict_s"] = t_pred
    out["dl"] = {}
    combined = None
    for k in args.candidates:
        for recipe in args.refine:
            t1 = time.perf_counter()
            rec = refine_prediction(p.intensity, None, pred, refine=recipe, candidates=k * _sources(args),
                                    seed=args.seed,
                                    early_stop=args.early_stop)
            name = f"{recipe} (k={k})"
            out["dl"][name] = {**_score(p.obj, rec.obj, rec.support, p.support), "llk": rec.llk,
                               "llk_free": rec.llk_free, "iterations": rec.meta.get("iterations"),
                               "seconds": t_pred + time.perf_counter() - t1,
                               "candidates": rec.meta.get("candidates")}
            if k == max(args.candidates) and (combined is None or rec.llk_free < combined[1]["llk_free"]):
                combined = (name, out["dl"][name])
    out["dl"]["combined"] = {**combined[1], "chosen": combined[0],
                             "seconds": sum(v["seconds"] for n, v in out["dl"].items()
                                            if n.endswith(f"(k={max(args.candidates)})")) - t_pred * (len(args.refine) - 1)}
    out["dl_any"] = bool(any(v["success"] for v in out["dl"].values()))
    if not args.skip_conventional:
        out["conventional"] = {r: conventional(p, args, key, r) for r in args.conv}
    return out


def _corrector(args) -> dict:
    """``--corrector``: the phase corrector's arguments of ``predict_object`` (the registry caches it)."""
    if not args.corrector:
        return {}
    from napari_bcdi_dl.models.dl_phasing import resolve_corrector

    return {"corrector": resolve_corrector(args.corrector), "correct_rounds": args.correct_rounds}


def _sources(args) -> int:
    """Candidate sources: the network's, and the corrector's with ``--corrector`` (``--candidates`` each)."""
    return 2 if args.corrector else 1


def _grid(value: str):
    """``--grid-refine``: ER iterations (a number) or a recipe string."""
    return int(value) if value.strip().isdigit() else value


def _flip_variants():
    return [tuple(ax for ax, f in zip(range(3), bits) if f) for bits in itertools.product((0, 1), repeat=3)]


def real_pattern(path: Path, args, model, card, partial: dict) -> dict:
    """The measured pattern (see the module docstring); ``partial`` is filled as it goes and saved."""
    with np.load(path) as f:
        data = np.asarray(f["data"], dtype=np.float32)
    out = partial
    out.update({"file": path.name, "shape": list(data.shape)})
    t0 = time.perf_counter()
    pred = predict_object(data, model=model, card=card, keep=max(args.candidates), **_corrector(args))
    rec = refine_prediction(data, None, pred, refine=DEFAULT_REFINE,
                            candidates=max(args.candidates) * _sources(args),
                            seed=args.seed, early_stop=args.early_stop)
    out["dl_shipped"] = {"llk": rec.llk, "llk_free": rec.llk_free, "seconds": time.perf_counter() - t0,
                         "chosen_flip": pred.meta.get("chosen_flip"), "refine": DEFAULT_REFINE}
    shipped = (rec.obj, rec.support)
    dl_objs, dl = [], []
    t0 = time.perf_counter()
    for axes in _flip_variants():
        d = np.flip(data, axes).copy() if axes else data
        pred = predict_object(d, model=model, card=card, tta=1, **_corrector(args))
        rec = refine_prediction(d, None, pred, refine=DEFAULT_REFINE, candidates=_sources(args), seed=args.seed,
                                early_stop=args.early_stop)
        o, s = (np.flip(rec.obj, axes), np.flip(rec.support, axes)) if axes else (rec.obj, rec.support)
        dl_objs.append((np.ascontiguousarray(o), np.ascontiguousarray(s)))
        dl.append({"flip": list(axes), "llk": rec.llk, "llk_free": rec.llk_free})
    out["dl_seconds_each"] = (time.perf_counter() - t0) / len(dl)
    out["dl"] = dl
    out["dl_agreement"] = _agreement(dl_objs)
    c = compare(dl_objs[0][0], shipped[0], dl_objs[0][1], shipped[1], remove_ramp=True)
    out["dl_shipped_vs_flip0"] = {"error": c["error"], "phase_rmse": c["phase_rmse"], "match": is_match(c)}
    if not args.skip_conventional:
        t0 = time.perf_counter()
        res = phase(data, seed=args.seed, **_route_kwargs("project", args))  # not cached
        out["conventional_seconds"] = time.perf_counter() - t0
        out["conventional"] = [{"llk": r.llk, "llk_free": r.llk_free} for r in res.runs]
        out["conventional_best"] = {"llk": res.best.llk, "llk_free": res.best.llk_free}
        out["conventional_agreement"] = _agreement([(r.obj, r.support) for r in res.runs])
        best = (res.best.obj, res.best.support)
        vs = {}
        for name, (o, s) in (("shipped", shipped), ("best_flip", dl_objs[min(range(len(dl)),
                                                                              key=lambda i: dl[i]["llk_free"])])):
            c = compare(best[0], o, best[1], s, remove_ramp=True)
            vs[name] = {"error": c["error"], "phase_rmse": c["phase_rmse"], "match": is_match(c)}
        out["dl_vs_conventional"] = vs
        # how many conventional runs agree with the best one (the user's "reproducibility" check)
        ok = [is_match(compare(best[0], r.obj, best[1], r.support, remove_ramp=True))
              for i, r in enumerate(res.runs) if i != res.best_index]
        out["conventional_runs_matching_best"] = int(sum(ok))
    return out


def support_history(path: Path, args) -> None:
    """One run of the first-round default and one of the current default on the measured pattern: support
    size and LLK through the run (the schedule question of issue 17, item 2)."""
    with np.load(path) as f:
        data = np.asarray(f["data"], dtype=np.float32)
    for route in ("legacy", "project", "project-s600"):
        kw = {**_route_kwargs(route, args), "runs": 1}
        rec = phase(data, seed=args.seed, **kw).best
        h = rec.history
        marks = [x for x in h if x["iteration"] in (1, 400, 1000, 1400) or x["algorithm"] == "final"]
        er = [x for x in h if x["algorithm"] == "ER"]
        print(f"{route:8s} {json.dumps(_effective(kw))}: support " +
              " → ".join(f"{x['support_size']} (it {x['iteration']})" for x in marks) +
              f"; final ER LLK {er[0]['llk']:.3g} → {rec.llk:.3g}, free LLK {rec.llk_free:.3g}", flush=True)


def _agreement(objs) -> dict:
    errs, rmses, ok = [], [], []
    for (a, sa), (b, sb) in itertools.combinations(objs, 2):
        c = compare(a, b, sa, sb, remove_ramp=True)
        errs.append(c["error"])
        rmses.append(c["phase_rmse"])
        ok.append(is_match(c))
    return {"pairs": len(ok), "match_fraction": float(np.mean(ok)) if ok else float("nan"),
            "median_error": float(np.median(errs)) if errs else float("nan"),
            "median_phase_rmse": float(np.median(rmses)) if rmses else float("nan")}


def _frac(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f} %)" if n else "—"


def summarise(cases: list, args) -> str:
    """Markdown tables: success per DL refinement and per conventional route, per group."""
    names = sorted({n for c in cases for n in c.get("dl", {})}, key=lambda n: (n == "combined", n))
    routes = [r for r in args.conv if any(r in c.get("conventional", {}) for c in cases)]
    head = ["group", "n", *[f"DL {n}" for n in names], "DL any", "DL unrefined",
            *[f"conv. {r}" for r in routes], *[f"conv. {r} any run" for r in routes]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for group in ("high", "low"):
        cs = [c for c in cases if c["group"] == group]
        if not cs:
            continue
        n = len(cs)
        row = ["2π–5π" if group == "high" else "0.5π–2π (control)", str(n)]
        row += [_frac(sum(c["dl"][m]["success"] for c in cs if m in c["dl"]), n) for m in names]
        row += [_frac(sum(c["dl_any"] for c in cs), n), f"{sum(c['dl_unrefined']['success'] for c in cs)}/{n}"]
        conv = {r: [c["conventional"][r] for c in cs if r in c.get("conventional", {})] for r in routes}
        row += [_frac(sum(v["success"] for v in conv[r]), len(conv[r])) for r in routes]
        row += [_frac(sum(v["any_run_success"] for v in conv[r]), len(conv[r])) for r in routes]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Median seconds per case: " + ", ".join(
        f"DL {m} {np.median([c['dl'][m]['seconds'] for c in cases if m in c['dl']]):.1f}" for m in names) + "; "
        + ", ".join(f"conv. {r} {np.median([c['conventional'][r]['seconds'] for c in cases if r in c.get('conventional', {})]):.0f}"
                    for r in routes) + ".")
    its = [c["dl"][m]["iterations"] for c in cases for m in names if m != "combined" and c["dl"][m].get("iterations")]
    if its:
        lines.append(f"Refinement iterations per candidate (early stop {args.early_stop}): median {np.median(its):.0f}.")
    for group in ("high", "low"):
        cs = [c for c in cases if c["group"] == group]
        if cs:
            flat = sum(c["control_flat_passes"] for c in cs)
            half = sum(c["control_half_passes"] for c in cs)
            lines.append(f"Controls passing the threshold ({group} strain; must be 0 for high): flat phase "
                         f"{flat}/{len(cs)}, half phase {half}/{len(cs)}.")
    wca = [c["wca_model_grid"] for c in cases if "wca_model_grid" in c and c["group"] == "high"]
    if wca:
        lines.append(f"WCA of the predicted phase on the model grid (high strain): median {np.median(wca):.3f}.")
    return "\n".join(lines)


def _model_name(name: str) -> str:
    """A registry name as it is; a ``.keras`` file as ``FOLDER-STEM`` (every export has the same file name)."""
    p = Path(name)
    return p.stem if p.suffix != ".keras" else f"{p.resolve().parent.name}-{p.stem}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--n-high", type=int, default=20)
    ap.add_argument("--n-low", type=int, default=6)
    ap.add_argument("--runs", type=int, default=20, help="conventional runs per case (issue: 20)")
    ap.add_argument("--refine", nargs="+", default=["paper", DEFAULT_REFINE],
                    help="refinement recipes compared (names or recipe strings)")
    ap.add_argument("--candidates", nargs="+", type=int, default=[2], help="candidates refined (one or more)")
    ap.add_argument("--early-stop", type=int, default=DEFAULT_EARLY_STOP)
    ap.add_argument("--grid-refine", default="50",
                    help="model-grid refinement of each prediction: ER iterations or a recipe (default 50)")
    ap.add_argument("--conv", nargs="+", default=["project", "plain"], choices=sorted(CONV_ROUTES),
                    help="conventional routes")
    ap.add_argument("--seed", type=int, default=20260)
    ap.add_argument("--model", default=None, help="phase model name or .keras path (default: shipped)")
    ap.add_argument("--corrector", default=None,
                    help="phase corrector name or .keras path (models/phase_corrector.py; default: none)")
    ap.add_argument("--correct-rounds", type=int, default=1, help="corrector rounds (estimate, correct)")
    ap.add_argument("--skip-conventional", action="store_true")
    ap.add_argument("--real", default=str(REPO.parent / "shared" / "data" / "cdinn_exp_crop64.npz"))
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--out", default=None,
                    help="per-case JSON (default runs/phase/quality_MODEL[_CORRECTOR].json, named by the model's "
                         "and corrector's files, so a quick run of another model keeps the last full one)")
    ap.add_argument("--conv-cache", default=str(REPO / "runs" / "phase" / "conventional_cache.json"),
                    help="conventional results per case (they do not depend on the model)")
    ap.add_argument("--only-conventional", action="store_true", help="fill the cache, no model")
    ap.add_argument("--support-history", action="store_true",
                    help="only: support size and LLK through one run of the first-round and current default "
                         "on the measured pattern")
    args = ap.parse_args()
    if args.out is None:
        names = [_model_name(args.model) if args.model else "shipped"]
        names += [_model_name(args.corrector)] if args.corrector else []
        args.out = str(REPO / "runs" / "phase" / f"quality_{'_'.join(names)}.json")
    if args.support_history:
        support_history(Path(args.real), args)
        return
    model, card = (None, {}) if args.only_conventional else load_phase_model(args.model)
    print(f"# DL phasing quality — model {card.get('name')} (step {card.get('step')}), corrector "
          f"{args.corrector} × {args.correct_rounds}, {args.size}³, "
          f"{platform.node()}, {os.cpu_count()} cores", flush=True)
    cases = []
    todo = []  # 3 high, 1 low, ... (a partial run holds both groups)
    hi, lo = list(range(args.n_high)), list(range(args.n_low))
    while hi or lo:
        todo += [("high", hi.pop(0)) for _ in range(min(3, len(hi)))]
        if lo:
            todo.append(("low", lo.pop(0)))
    t_start = time.perf_counter()
    for group, i in todo:
        p, kw = make_case(args.size, args.seed, i, group == "high")
        r = run_case(p, kw, args, model, card, f"{group}-{i}")
        r.update(group=group, index=i)
        cases.append(r)
        conv = r.get("conventional", {})
        ctxt = " ".join(f"{n} e={v['error']:.2f} {'OK' if v['success'] else '--'} {v['seconds']:.0f}s"
                        for n, v in conv.items())
        if model is None:
            print(f"{group} {i:2d} conventional {ctxt}", flush=True)
            continue
        dtxt = " ".join(f"{n} e={v['error']:.2f} {'OK' if v['success'] else '--'}" for n, v in r["dl"].items())
        print(f"{group} {i:2d} {kw['shape']:>12s} {kw['field']:>14s} {kw['phase_range'] / math.pi:4.1f}π "
              f"wca {r.get('wca_model_grid', float('nan')):.3f} | unrefined e={r['dl_unrefined']['error']:.2f} | "
              f"DL {dtxt} | conv {ctxt}", flush=True)
        _write_json(args.out, {"args": vars(args), "cases": cases, "card": card, "partial": True,
                               "elapsed_s": time.perf_counter() - t_start, "load": os.getloadavg()})
    if model is None:
        return
    print()
    print(summarise(cases, args))
    result = {"args": vars(args), "cases": cases, "card": card}
    result["elapsed_s"] = time.perf_counter() - t_start
    _write_json(args.out, {**result, "partial": True})
    if not args.no_real and Path(args.real).is_file():
        real: dict = {}
        result["real"] = real
        try:
            real_pattern(Path(args.real), args, model, card, real)
        finally:
            result["elapsed_s"] = time.perf_counter() - t_start
            _write_json(args.out, {**result, "partial": "conventional" not in real and not args.skip_conventional})
        sh = real["dl_shipped"]
        llk = [d["llk"] for d in real["dl"]]
        free = [d["llk_free"] for d in real["dl"]]
        print(f"\nReal pattern {real['file']}: DL+ER as shipped: LLK {sh['llk']:.3g}, free LLK {sh['llk_free']:.3g}, "
              f"{sh['seconds']:.1f} s. Single-input DL+ER over 8 input flips: LLK {np.min(llk):.3g}–{np.max(llk):.3g}, "
              f"free LLK {np.min(free):.3g}–{np.max(free):.3g}, pairs matching "
              f"{real['dl_agreement']['match_fraction']:.0%} (median error {real['dl_agreement']['median_error']:.3f})"
              f", {real['dl_seconds_each']:.1f} s each")
        if "conventional" in real:
            ca = real["conventional_agreement"]
            cl = [r["llk"] for r in real["conventional"]]
            cf = [r["llk_free"] for r in real["conventional"]]
            vs = real["dl_vs_conventional"]
            print(f"Conventional ({args.runs} runs): best LLK {real['conventional_best']['llk']:.3g}, free "
                  f"{real['conventional_best']['llk_free']:.3g} (all runs: LLK {np.min(cl):.3g}–{np.max(cl):.3g}, "
                  f"free {np.min(cf):.3g}–{np.max(cf):.3g}), pairs matching {ca['match_fraction']:.0%} "
                  f"(median error {ca['median_error']:.3f}), runs matching the best "
                  f"{real['conventional_runs_matching_best']}/{args.runs - 1}, {real['conventional_seconds']:.0f} s; "
                  f"DL as shipped vs conventional best: error {vs['shipped']['error']:.3f}, rmse "
                  f"{vs['shipped']['phase_rmse']:.2f}, match {vs['shipped']['match']}")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
