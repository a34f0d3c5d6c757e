"""Conventional phasing: N runs of a recipe from random starts, the best one, and their modes.

Each run: initial support from the autocorrelation of the data (or the support given), a random start
``ifftn(sqrt(I) · exp(iφ))`` with uniform random phases, restricted to the support and scaled to the data,
then the recipe's steps (with a detwinning step inserted, see ``detwin``) with shrink-wrap every ``sup``
iterations (σ decaying from σ₀ to σ₁ over the run),
a final support projection and Poisson scaling. A support that collapses or explodes (outside
``[min_support, max_support]`` of the array) restarts the run from a new random start with the threshold
moved the other way (×0.8 if too small, ×1.25 if too large), at most ``max_retries`` times.

All runs share the same free voxels (drawn from ``seed``) so their free log-likelihoods compare. The best
run is the one with the lowest free LLK (``select="llk_free"``, default), LLK (``"llk"``) or sharpness
(``"sharpness"``: Σ|ρ|⁴ / (Σ|ρ|²)² inside the support, lower = more uniform modulus). The kept runs (all, or
the best ``keep``) are registered to the best and decomposed into modes (``modes.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import BCDIError
from ..progress import CancelToken, ProgressFn, report
from ..types import Reconstruction
from .modes import first_mode_of
from .operators import Engine, PreparedData, prepare_data, to_native
from .recipe import DEFAULT_RECIPE, Step, format_recipe, insert_detwin, parse_recipe, total_iterations
from .support import SupportFractionError, autocorrelation_support_native, sigma_at

SELECT = ("llk_free", "llk", "sharpness")

#: A live-view callback: ``snapshot(iteration, obj, support, history)`` with a centred complex64 copy of the
#: running object, its uint8 support and a copy of the LLK history so far (called in the worker's thread).
SnapshotFn = Callable[[int, np.ndarray, np.ndarray, list], None]
#: iterations between two snapshots, by default
DEFAULT_SNAPSHOT_EVERY = 50


@dataclass
class PhasingResult:
    """What :func:`phase` returns.

    Attributes
    ----------
    best : the selected run.
    runs : every run, in run order (each centred, with its own history and meta).
    modes : weights of the orthogonal modes of the kept runs, descending, summing to 1 (``[1.0]`` for one
        run).
    first_mode : the first mode (complex64, centred, registered to ``best``), or None for a single run.
    best_index : index of ``best`` in ``runs``.
    kept : indices of the runs used for the modes.
    """

    best: Reconstruction
    runs: list = field(default_factory=list)
    modes: np.ndarray = field(default_factory=lambda: np.ones(1))
    first_mode: np.ndarray | None = None
    best_index: int = 0
    kept: list = field(default_factory=list)

    @property
    def first_mode_weight(self) -> float:
        """Weight of the first mode (1 = all kept runs agree)."""
        return float(self.modes[0]) if len(self.modes) else float("nan")


def sharpness(obj: np.ndarray, support: np.ndarray | None = None) -> float:
    """Σ|ρ|⁴ / (Σ|ρ|²)² over the support (scale-free; lower means a more uniform modulus)."""
    m2 = np.abs(np.asarray(obj)) ** 2
    if support is not None:
        m2 = m2[np.asarray(support, dtype=bool)]
    s2 = float(m2.sum(dtype=np.float64))
    return float((m2.astype(np.float64) ** 2).sum() / (s2 * s2)) if s2 > 0 else float("inf")


def _run_seed(seed: int, run: int, attempt: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(run), int(attempt), 0x5EED])


def _random_start(data: PreparedData, support: Any, rng: np.random.Generator) -> Any:
    """ifftn(sqrt(I) · exp(iφ)) · support, φ uniform (FFT-native backend array)."""
    be, xp = data.be, data.be.xp
    phi = be.asarray(rng.uniform(0, 2 * np.pi, size=data.shape).astype(np.float32))
    obj = xp.empty(data.shape, dtype=np.complex64)
    xp.cos(phi, out=obj.real)
    xp.sin(phi, out=obj.imag)
    del phi
    obj *= data.amp
    obj = be.ifftn_(obj)
    obj *= support
    return obj


def run_recipe(
    engine: Engine,
    steps: Sequence[Step],
    *,
    support_threshold: float,
    support_method: str,
    support_sigma: Any,
    min_support: float,
    max_support: float,
    llk_every: int,
    tick: Any,
    stop: Any = None,
    snapshot: SnapshotFn | None = None,
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
) -> list:
    """Run parsed ``steps`` on ``engine``; returns the history. ``tick()`` is called every iteration.

    Support updates happen after every ``step.support_period``-th iteration of the run (never after the
    last one); LLK is recorded at the first iteration and every ``llk_every`` iterations. ``stop(history)``,
    if given, is asked after each record and ends the run when it returns True. ``snapshot`` (a
    :data:`SnapshotFn`), if given, is called after every ``snapshot_every``-th iteration with copies of the
    running object (:func:`snapshot_arrays`) for a live view.
    """
    every = int(snapshot_every) if snapshot is not None else 0
    total = total_iterations(list(steps))
    history: list = []
    it = 0
    for step in steps:
        engine.positivity = step.positivity
        algo = step.algorithm
        saved = None
        if algo == "DETWIN":
            saved = engine.support
            engine.set_support(halve_support(engine.be, saved, axis=0))
            algo = "HIO"
        for _ in range(step.n):
            it += 1
            want = llk_every > 0 and (it % llk_every == 0 or it == 1)
            res = engine.iterate(algo, step.beta, want_llk=want)
            if res is not None:
                history.append(
                    {
                        "iteration": it,
                        "algorithm": step.algorithm,
                        "llk": res[0],
                        "llk_free": res[1],
                        "support_size": engine.n_support,
                    }
                )
                if stop is not None and stop(history):
                    tick()
                    return history
            if saved is None and step.support_period and it % step.support_period == 0 and it < total:
                engine.update_support(
                    sigma=sigma_at(it, total, support_sigma),
                    threshold=support_threshold,
                    method=support_method,
                    border_only=step.border_only,
                    min_fraction=min_support,
                    max_fraction=max_support,
                )
            tick()
            if every > 0 and it % every == 0:
                obj, sup = snapshot_arrays(engine)
                snapshot(it, obj, sup, list(history))
        if saved is not None:
            engine.set_support(saved)
    return history


def snapshot_arrays(engine: Engine) -> tuple[np.ndarray, np.ndarray]:
    """Centred copies (complex64 object, uint8 support) of a running engine, as :meth:`Engine.centred` makes
    them (crystal rolled to the middle, mean phase 0), without touching the engine."""
    from .operators import centred_copy

    obj, sup, _ = centred_copy(engine.be, engine.obj, engine.support)
    return obj, sup


def halve_support(be: Any, support: Any, axis: int = 0) -> Any:
    """The support with the half beyond its (periodic) centre of mass along ``axis`` removed (FFT-native)."""
    from .operators import circular_centre

    host = be.to_numpy(support)
    n = host.shape[axis]
    c = circular_centre(host)[axis]
    # keep the half-period [c - n/2, c) along the axis
    coord = (np.arange(n) - c) % n
    keep = coord >= n / 2
    shape = [1, 1, 1]
    shape[axis] = n
    return support & be.asarray(keep.reshape(shape))


def _finish(engine: Engine, history: list, it: int, *, method: str, meta: dict) -> Reconstruction:
    """Support projection, Poisson scaling, final LLK, centring."""
    engine.apply_support()
    engine.scale_to_data("P")
    llk, llk_f = engine.llk()
    history.append(
        {
            "iteration": it,
            "algorithm": "final",
            "llk": llk,
            "llk_free": llk_f,
            "support_size": engine.n_support,
        }
    )
    engine.release()
    obj, sup = engine.centred()
    meta = dict(meta)
    meta["sharpness"] = sharpness(obj, sup)
    meta["support_fraction"] = float(sup.mean())
    meta["centring_shift"] = engine.centring_shift
    return Reconstruction(
        obj=obj, support=sup, llk=llk, llk_free=llk_f, method=method, history=history, meta=meta
    )


def phase(
    intensity: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    recipe: str = DEFAULT_RECIPE,
    runs: int = 1,
    seed: int = 0,
    support: np.ndarray | None = None,
    support_threshold: float = 0.1,
    support_method: str = "max",
    support_sigma: Any = (2.0, 0.5, 600),
    support_period: int = 20,
    autocorrelation_threshold: float = 0.1,
    min_support: float = 1e-4,
    max_support: float = 0.5,
    max_retries: int = 3,
    beta: float = 0.9,
    positivity: bool = False,
    detwin: bool = True,
    free_fraction: float = 0.05,
    llk_every: int = 10,
    select: str = "llk_free",
    keep: int | None = None,
    backend: Any = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    snapshot: SnapshotFn | None = None,
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
) -> PhasingResult:
    """Conventional phase retrieval of a centred 3D intensity (see the module docstring).

    Parameters
    ----------
    intensity : centred intensity (z, y, x), photon counts.
    mask : centred mask, 1 = gap / invalid voxel (left free in the modulus projection).
    recipe : recipe string (grammar in ``recipe.py``), e.g. ``"HIO**400, RAAR**1000, ER**300"``.
    runs : number of independent runs from random starts.
    seed : master seed: run i uses ``(seed, i)``; the free voxels use ``seed``.
    support : initial support (centred, 1 inside) instead of the autocorrelation one.
    support_threshold, support_method : shrink-wrap threshold relative to the ``"max"`` (default) / ``"rms"``
        / ``"average"`` of the smoothed modulus inside the support. The default, 0.1 of the maximum, solved
        5 of 12 unseen high-strain crystals where PyNX's rms 0.25 solved none, and lowered the LLK of the
        measured pattern from 26 to 11 (``benchmarks/dl_phase_quality.py``, docs/models.md): the rms
        threshold rises as the support shrinks and keeps shrinking it through the final ER.
    support_sigma : shrink-wrap Gaussian σ in voxels, a number, (σ₀, σ₁) decaying over the run, or
        (σ₀, σ₁, n) reaching σ₁ at iteration n and staying there (default (2, 0.5, 600), PyNX's
        ``smooth_width``: a σ still shrinking in the final ER kept shrinking the support and raised the LLK).
    support_period : default support update period (a recipe's ``sup=`` overrides it).
    autocorrelation_threshold : relative threshold of the initial support.
    min_support, max_support : allowed support fraction of the array (else retry).
    max_retries : retries of a run whose support left the allowed range.
    beta : default β of HIO / RAAR (a recipe's ``beta=`` or ``HIO(0.7)`` overrides it).
    positivity : positivity constraint by default (a recipe's ``pos=`` overrides it).
    detwin : if the recipe has no ``DETWIN`` step, run 40 of its HIO/RAAR iterations from iteration 100 on
        a half support (``recipe.insert_detwin``, PyNX's ``detwin=True``): it breaks the object/twin
        symmetry that otherwise leaves some runs a mixture of both (mostly with near-centrosymmetric crystals).
    free_fraction : fraction of voxels kept free for the free LLK.
    llk_every : LLK recorded every this many iterations (0: only at the end).
    select : ``"llk_free"`` (default), ``"llk"`` or ``"sharpness"``.
    keep : number of best runs used for the modes (None: all).
    backend : ``"auto"`` (CuPy with a GPU, else numpy), ``"numpy"`` or ``"cupy"``.
    progress, cancel : progress callback ``(done, total)`` and cancel token, checked every iteration.
    snapshot, snapshot_every : live view: ``snapshot(iteration, obj, support, history)`` every
        ``snapshot_every`` iterations of each run (:func:`run_recipe`); None: no copies are made.

    Returns
    -------
    PhasingResult
    """
    if select not in SELECT:
        raise BCDIError(f"unknown run selection {select!r}: use one of {', '.join(SELECT)}")
    runs = int(runs)
    if runs < 1:
        raise BCDIError(f"number of runs must be at least 1, got {runs}")
    steps = parse_recipe(recipe, support_period=support_period, beta=beta, positivity=positivity)
    if detwin:
        steps = insert_detwin(steps)
    n_it = total_iterations(steps)
    data = prepare_data(intensity, mask, free_fraction=free_fraction, seed=seed, backend=backend)
    be = data.be
    if support is not None:
        sup0 = np.asarray(support)
        if sup0.shape != data.shape:
            raise BCDIError(f"support shape {sup0.shape} differs from intensity shape {data.shape}")
        if not sup0.any():
            raise BCDIError("the initial support is empty: give a support with 1 inside the crystal")
        sup0_native = to_native(be, sup0 != 0, bool)
    else:
        sup0_native = None

    state = {"done": 0, "total": runs * n_it}
    report(progress, cancel, 0, state["total"])

    def tick() -> None:
        state["done"] += 1
        report(progress, cancel, state["done"], state["total"])

    results: list[Reconstruction] = []
    for r in range(runs):
        thr = float(support_threshold)
        ac_thr = float(autocorrelation_threshold)
        attempt = 0
        while True:
            rng = _run_seed(seed, r, attempt)
            t0 = time.perf_counter()
            done_before = state["done"]
            if sup0_native is not None:
                s = sup0_native.copy()
            else:
                s = autocorrelation_support_native(be, data.intensity_native(), ac_thr)
            if not bool(s.any()):
                raise BCDIError("the autocorrelation support is empty: lower the autocorrelation threshold")
            engine = Engine(data, _random_start(data, s, rng), s, positivity=positivity)
            engine.scale_to_data("I")
            try:
                history = run_recipe(
                    engine,
                    steps,
                    support_threshold=thr,
                    support_method=support_method,
                    support_sigma=support_sigma,
                    min_support=min_support,
                    max_support=max_support,
                    llk_every=llk_every,
                    tick=tick,
                    snapshot=snapshot,
                    snapshot_every=snapshot_every,
                )
            except SupportFractionError as err:
                engine.release()
                del engine
                attempt += 1
                if attempt > max_retries:
                    raise BCDIError(f"run {r + 1}: {err} (after {max_retries} retries)") from None
                thr *= 0.8 if err.kind == "small" else 1.25
                state["total"] += state["done"] - done_before  # the failed iterations are redone
                state["done"] = done_before
                report(progress, cancel, state["done"], state["total"])
                continue
            meta = {
                "recipe": format_recipe(steps),
                "seed": int(seed),
                "run": r,
                "attempts": attempt + 1,
                "support_threshold": thr,
                "support_method": support_method,
                "support_sigma": support_sigma,
                "time_s": 0.0,
                **data.meta,
            }
            rec = _finish(engine, history, n_it, method="conventional", meta=meta)
            rec.meta["time_s"] = time.perf_counter() - t0
            results.append(rec)
            break

    return select_and_decompose(results, select=select, keep=keep)


def _score(rec: Reconstruction, select: str) -> float:
    if select == "sharpness":
        v = rec.meta.get("sharpness")
    elif select == "llk":
        v = rec.llk
    else:
        v = rec.llk_free if rec.llk_free is not None else rec.llk
    return float("inf") if v is None or not np.isfinite(v) else float(v)


def select_and_decompose(
    results: list, *, select: str = "llk_free", keep: int | None = None, upsample: int = 20
) -> PhasingResult:
    """Pick the best of ``results`` and decompose the kept ones into modes (see the module docstring)."""
    if not results:
        raise BCDIError("no reconstruction to select from")
    scores = [_score(r, select) for r in results]
    order = [int(i) for i in np.argsort(scores, kind="stable")]
    best_i = order[0]
    n_keep = len(results) if keep is None else max(1, min(int(keep), len(results)))
    kept = sorted(order[:n_keep])
    for i, r in enumerate(results):
        r.meta["rank"] = order.index(i) + 1
        r.meta["score"] = scores[i]
        r.meta["select"] = select
    best = results[best_i]
    if len(kept) > 1:
        objs = [results[i].obj for i in kept]
        weights, mode, infos = first_mode_of(objs, kept.index(best_i), upsample=upsample)
        for i, info in zip(kept, infos):
            results[i].meta["registration"] = info
    else:
        weights, mode = np.ones(1), None
    best.meta["first_mode_weight"] = float(weights[0])
    best.meta["n_runs"] = len(results)
    return PhasingResult(
        best=best, runs=results, modes=np.asarray(weights), first_mode=mode, best_index=best_i, kept=kept
    )
