"""Refinement of a given object (the DL pipeline's last step): a recipe run from that start.

Masto, Bellec et al. refine the object predicted by the network with ~400 Error Reduction iterations whose
support may change only at its border (:data:`REFINE_RECIPES` ``"paper"``). Any recipe of the grammar of
``recipe.py`` may be run instead, e.g. ``"HIO**200, ER**200"`` with plain shrink-wrap: HIO can leave a start
that is close but wrong, which border-only ER cannot. Without a recipe, ``n_iter`` ER iterations with
border-only (or plain, ``border_only=False``) support updates run, as before recipes existed.

Support updates: every ``sup=`` iterations (``support_period``) the smoothed modulus (σ = ``support_sigma``)
is thresholded at ``support_threshold`` × the rms / mean / maximum (``support_method``) of the smoothed
modulus inside the support; with ``border=on`` only the support's one-voxel shell may change (see
``support.py``).

Early stop (``early_stop=N``): during the final ER step, the run stops when the free LLK has not improved
(by 0.1 %) for ``N`` iterations: the refinement spends no iterations it does not need.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..errors import BCDIError
from ..progress import CancelToken, ProgressFn, report
from ..types import Reconstruction
from .operators import Engine, PreparedData, prepare_data, to_native
from .recipe import Step, format_recipe, parse_recipe, total_iterations
from .runs import DEFAULT_SNAPSHOT_EVERY, SnapshotFn, _finish, run_recipe

#: Named refinement recipes. ``"paper"``: the published refinement (border-only ER).
REFINE_RECIPES: dict[str, str] = {
    "paper": "border=on, ER**400",
    "hio-er": "HIO**200, ER**200",
    "raar-er": "RAAR**300, ER**100",
}
#: Relative free-LLK improvement below which the early stop counts an iteration as "no better".
EARLY_STOP_RTOL = 1e-3


def resolve_recipe(recipe: str) -> str:
    """A refinement recipe: a name of :data:`REFINE_RECIPES` or a recipe string (checked by the parser)."""
    if not isinstance(recipe, str) or not recipe.strip():
        raise BCDIError(
            f"empty refinement recipe: give a name ({', '.join(REFINE_RECIPES)}) or e.g. \"HIO**200, ER**200\""
        )
    key = recipe.strip().lower()
    return REFINE_RECIPES.get(key, recipe)


def refine_steps(
    recipe: str | None,
    n_iter: int = 400,
    *,
    border_only: bool = True,
    support_period: int = 20,
    positivity: bool = False,
) -> list[Step]:
    """The steps of a refinement: the parsed ``recipe`` (a name or a string), or ``n_iter`` ER iterations.

    A malformed recipe raises a one-line :class:`BCDIError` naming the offending item.
    """
    if recipe is None:
        n_iter = int(n_iter)
        if n_iter < 0:
            raise BCDIError(f"refine: the number of iterations must be >= 0, got {n_iter}")
        return [Step("ER", n_iter, 0.9, int(support_period), bool(positivity), bool(border_only))] if n_iter else []
    text = resolve_recipe(recipe)
    try:
        return parse_recipe(text, support_period=support_period, positivity=positivity)
    except BCDIError as err:
        raise BCDIError(f"refinement {err}") from None


class _EarlyStop:
    """Stops a run in its final ER step once the free LLK has not improved for ``patience`` iterations."""

    def __init__(self, steps: list[Step], patience: int) -> None:
        self.patience = int(patience)
        total = total_iterations(steps)
        self.from_iteration = total - steps[-1].n if steps and steps[-1].algorithm == "ER" else total + 1
        self.best = np.inf
        self.best_it = 0
        self.stopped_at: int | None = None

    def __call__(self, history: list) -> bool:
        if self.patience <= 0 or not history:
            return False
        h = history[-1]
        it = int(h["iteration"])
        if it <= self.from_iteration:
            return False
        v = h["llk_free"] if h.get("llk_free") is not None else h["llk"]
        if v is None or not np.isfinite(v):
            return False
        if v < self.best * (1 - EARLY_STOP_RTOL) or self.best_it == 0:
            self.best, self.best_it = float(v), it
            return False
        if it - self.best_it >= self.patience:
            self.stopped_at = it
            return True
        return False


def refine(
    intensity: np.ndarray,
    obj: np.ndarray,
    support: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    recipe: str | None = None,
    n_iter: int = 400,
    border_only: bool = True,
    support_period: int = 20,
    support_threshold: float = 0.25,
    support_method: str = "rms",
    support_sigma: float = 1.0,
    positivity: bool = False,
    free_fraction: float = 0.05,
    seed: int = 0,
    llk_every: int = 10,
    early_stop: int = 0,
    method: str = "refined",
    backend: Any = "auto",
    data: PreparedData | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    snapshot: SnapshotFn | None = None,
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
) -> Reconstruction:
    """Refine a centred object against a centred intensity with a recipe (default: border-only ER).

    Parameters
    ----------
    intensity : centred intensity (z, y, x).
    obj : centred starting object (complex; a real array is taken as zero phase), same shape.
    support : centred starting support (1 inside), same shape.
    mask : centred gap mask (1 = invalid), left free in the modulus projection.
    recipe : a recipe string (grammar of ``recipe.py``, e.g. ``"HIO**200, ER**200"``) or a name of
        :data:`REFINE_RECIPES`; None: ``n_iter`` ER iterations with ``border_only`` updates.
    n_iter : ER iterations when ``recipe`` is None (0 only scales the object and evaluates it).
    border_only : support updates only on the support's border, when ``recipe`` is None (a recipe says
        ``border=on`` itself).
    support_period : iterations between support updates (0: frozen support; a recipe's ``sup=`` overrides).
    support_threshold, support_method, support_sigma : the threshold test (see ``support.py``).
    positivity : positivity inside the support.
    free_fraction, seed : free voxels for the free LLK (fraction, seed of the draw).
    llk_every : LLK recorded every this many iterations.
    early_stop : stop the final ER step after this many iterations without a better free LLK (0: off).
    method : label stored in the result (the DL pipeline passes ``"dl"``).
    backend : ``"auto"``, ``"numpy"`` or ``"cupy"``.
    data : the data already prepared by ``operators.prepare_data`` (several refinements of one pattern
        then share it; ``intensity``, ``mask``, ``free_fraction``, ``seed`` and ``backend`` are not used).
    progress, cancel : progress ``(done, total)`` and cancellation, every iteration.
    snapshot, snapshot_every : live view: ``snapshot(iteration, obj, support, history)`` every
        ``snapshot_every`` iterations (``runs.run_recipe``); None: no copies are made.

    Returns
    -------
    Reconstruction with the LLK history (``history``), final LLK and free LLK, centred object and support;
    ``meta["recipe"]`` is the recipe run, ``meta["iterations"]`` the iterations done.
    """
    steps = refine_steps(recipe, n_iter, border_only=border_only, support_period=support_period,
                         positivity=positivity)
    if data is None:
        data = prepare_data(intensity, mask, free_fraction=free_fraction, seed=seed, backend=backend)
    o = np.asarray(obj)
    s = np.asarray(support)
    if o.shape != data.shape:
        raise BCDIError(f"refine: object shape {o.shape} differs from intensity shape {data.shape}")
    if s.shape != data.shape:
        raise BCDIError(f"refine: support shape {s.shape} differs from intensity shape {data.shape}")
    if not np.all(np.isfinite(o)):
        raise BCDIError("refine: the starting object contains NaN or infinite values")
    sb = s != 0
    if not sb.any():
        raise BCDIError("refine: the starting support is empty: give a support with 1 inside the crystal")
    if not np.any(o[sb]):
        raise BCDIError("refine: the starting object is zero inside the support")
    be = data.be
    t0 = time.perf_counter()
    sup_n = to_native(be, sb, bool)
    obj_n = to_native(be, o, np.complex64)
    obj_n *= sup_n
    engine = Engine(data, obj_n, sup_n, positivity=positivity)
    engine.scale_to_data("I")
    total = total_iterations(steps)
    report(progress, cancel, 0, total)
    done = {"n": 0}

    def tick() -> None:
        done["n"] += 1
        report(progress, cancel, done["n"], total)

    stop = _EarlyStop(steps, early_stop)
    history = run_recipe(
        engine,
        steps,
        support_threshold=support_threshold,
        support_method=support_method,
        support_sigma=float(support_sigma),
        min_support=0.0,
        max_support=1.0,
        llk_every=llk_every,
        tick=tick,
        stop=stop if early_stop > 0 else None,
        snapshot=snapshot,
        snapshot_every=snapshot_every,
    )
    iterations = done["n"]
    if iterations < total:  # stopped early: the bar ends full
        report(progress, cancel, total, total)
    meta = {
        "recipe": format_recipe(steps) if steps else "",
        "iterations": int(iterations),
        "early_stop": int(early_stop),
        "stopped_early": stop.stopped_at is not None,
        "seed": int(data.meta.get("free_seed", seed)),
        "border_only": any(st.border_only for st in steps),
        "support_threshold": float(support_threshold),
        "support_method": support_method,
        "support_sigma": float(support_sigma),
        **data.meta,
    }
    rec = _finish(engine, history, iterations, method=method, meta=meta)
    rec.meta["time_s"] = time.perf_counter() - t0
    return rec
