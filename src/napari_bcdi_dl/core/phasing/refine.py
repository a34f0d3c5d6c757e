"""Constrained refinement of a given object: ER with border-only support updates (the DL pipeline's last step).

Masto, Bellec et al. refine the object predicted by the network with ~400 Error Reduction iterations whose
support may change only at its border. Here: the object is scaled to the data, then ER runs ``n_iter``
iterations; every ``support_period`` iterations the voxels of the support's one-voxel inner shell may leave
it and its outer (6-connected) neighbours may join it, where the Gaussian-smoothed modulus (σ =
``support_sigma``) passes ``support_threshold`` × the rms of the smoothed modulus inside the support. The
eroded core never changes, so the shape is kept. ``border_only=False`` gives plain shrink-wrap instead.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..errors import BCDIError
from ..progress import CancelToken, ProgressFn, report
from ..types import Reconstruction
from .operators import Engine, prepare_data, to_native
from .recipe import Step, format_recipe
from .runs import _finish, run_recipe


def refine(
    intensity: np.ndarray,
    obj: np.ndarray,
    support: np.ndarray,
    mask: np.ndarray | None = None,
    *,
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
    method: str = "refined",
    backend: Any = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Reconstruction:
    """Refine a centred object against a centred intensity with ER and border-only support updates.

    Parameters
    ----------
    intensity : centred intensity (z, y, x).
    obj : centred starting object (complex; a real array is taken as zero phase), same shape.
    support : centred starting support (1 inside), same shape.
    mask : centred gap mask (1 = invalid), left free in the modulus projection.
    n_iter : ER iterations (0 only scales the object and evaluates it).
    border_only : support updates only on the support's border (False: plain shrink-wrap).
    support_period : iterations between support updates (0: frozen support).
    support_threshold, support_method, support_sigma : the threshold test (see ``support.py``).
    positivity : positivity inside the support.
    free_fraction, seed : free voxels for the free LLK (fraction, seed of the draw).
    llk_every : LLK recorded every this many iterations.
    method : label stored in the result (the DL pipeline passes ``"dl"``).
    backend : ``"auto"``, ``"numpy"`` or ``"cupy"``.
    progress, cancel : progress ``(done, n_iter)`` and cancellation, every iteration.

    Returns
    -------
    Reconstruction with the LLK history (``history``), final LLK and free LLK, centred object and support.
    """
    n_iter = int(n_iter)
    if n_iter < 0:
        raise BCDIError(f"refine: the number of iterations must be >= 0, got {n_iter}")
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
    steps = (
        [Step("ER", n_iter, 0.9, int(support_period), bool(positivity), bool(border_only))] if n_iter else []
    )
    report(progress, cancel, 0, n_iter)
    done = {"n": 0}

    def tick() -> None:
        done["n"] += 1
        report(progress, cancel, done["n"], n_iter)

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
    )
    meta = {
        "recipe": format_recipe(steps) if steps else "",
        "seed": int(seed),
        "border_only": bool(border_only),
        "support_threshold": float(support_threshold),
        "support_method": support_method,
        "support_sigma": float(support_sigma),
        **data.meta,
    }
    rec = _finish(engine, history, n_iter, method=method, meta=meta)
    rec.meta["time_s"] = time.perf_counter() - t0
    return rec
