"""Iterative phase retrieval for BCDI: ER / HIO / RAAR with shrink-wrap, N runs, modes, refinement.

numpy + scipy.fft on the CPU, CuPy on a GPU when present (``backend.py``). Arrays in and out are centred
(z, y, x); intensity float32, objects complex64, masks uint8 with 1 = gap / invalid voxel.

Public API
----------
``phase(intensity, mask=None, *, recipe="HIO**400, RAAR**1000, ER**300", runs=1, seed=0, support=None,
progress=None, cancel=None, ...) -> PhasingResult`` — conventional phasing (``runs.py``).

``refine(intensity, obj, support, mask=None, *, n_iter=400, border_only=True, progress=None, cancel=None,
...) -> Reconstruction`` — ER with border-only support updates from a given start (``refine.py``).

``llk_poisson``, ``llk_free``, ``free_mask`` (``likelihood.py``); ``parse_recipe`` (``recipe.py``, grammar
there); ``autocorrelation_support``, ``update_support`` (``support.py``); ``register``,
``mode_decomposition`` (``modes.py``); ``get_backend`` (``backend.py``).
"""

from __future__ import annotations

from .backend import get_backend, select_backend_name
from .likelihood import free_mask, llk_free, llk_poisson
from .modes import mode_decomposition, register
from .recipe import DEFAULT_RECIPE, Step, parse_recipe
from .refine import refine
from .runs import PhasingResult, phase, sharpness
from .support import autocorrelation_support, update_support

__all__ = [
    "DEFAULT_RECIPE",
    "PhasingResult",
    "Step",
    "autocorrelation_support",
    "free_mask",
    "get_backend",
    "llk_free",
    "llk_poisson",
    "mode_decomposition",
    "parse_recipe",
    "phase",
    "refine",
    "register",
    "select_backend_name",
    "sharpness",
    "update_support",
]
