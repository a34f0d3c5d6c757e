"""Fused, threaded element-wise steps of an iteration (numpy backend only).

numpy runs each ufunc over the whole array on one core, one pass per operation: the five passes of the
modulus projection and the one or two of the real-space update cost 30–45 % of an iteration next to two
multi-threaded FFTs at 128³. Two implementations of the same steps, both sharing the array between the
cores (one contiguous range, or one set of blocks, per thread of a small pool):

* **compiled** (``_kernels.c``, built by ``pip install`` where a C compiler exists): one pass over memory
  per step, every operation of the step done on a voxel while it is in registers. Iterates agree with the
  plain ufunc sequence to float32 rounding (``|psi|`` is ``sqrtf(re² + im²)``, numpy's is a scaled hypot).
* **blocked numpy** (the fallback, and ``BCDI_DL_KERNELS=0``): the flat array is cut into blocks of
  :data:`BLOCK` voxels that stay in the core's cache while every ufunc of the step runs on them (numpy's
  ufuncs release the GIL). Bit-identical to the plain ufunc sequence: the same operations on the same
  values, only in a different order of voxels. The real-space coefficients are constant on most blocks (the
  support is a compact blob: at 128³ about two thirds of the blocks lie wholly outside it); there the
  coefficient is a Python scalar, which numpy multiplies 3–4× faster than a float32 array it must first
  cast to complex64 (and the array is not read at all).

A real-space coefficient is described by a :class:`Coefficient`: its value inside and outside the support
(what the compiled loops read, with the support as one byte per voxel) and the full float32 array with its
per-block constants (what the blocked path reads).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

try:  # the compiled loops (optional extension; see the module docstring)
    from . import _kernels
except ImportError:  # pragma: no cover - built without a C compiler
    _kernels = None

#: voxels per block
BLOCK = 1 << 16
#: arrays below this size run on the calling thread
MIN_THREADED_SIZE = 1 << 18
#: set to 0 to run the blocked numpy steps even where the compiled loops exist
ENV_VAR = "BCDI_DL_KERNELS"

_POOL: ThreadPoolExecutor | None = None


#: environment variable capping the engine's threads (element-wise steps and FFTs) in this process; the
#: batch sets it in each Dask worker so that N workers share the cores instead of each taking them all
THREADS_ENV = "BCDI_DL_THREADS"


def n_threads() -> int:
    """Threads of the engine in this process: the cores available to it, capped by ``BCDI_DL_THREADS``."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        cores = max(1, os.cpu_count() or 1)
    cap = os.environ.get(THREADS_ENV, "").strip()
    return min(cores, int(cap)) if cap.isdigit() and int(cap) > 0 else cores


def kernels_available() -> bool:
    """True when the compiled loops are built and not switched off by ``BCDI_DL_KERNELS=0``."""
    return _kernels is not None and os.environ.get(ENV_VAR, "1").strip() != "0"


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=n_threads(), thread_name_prefix="bcdi-dl-elementwise")
    return _POOL


class BlockPlan:
    """How a flat array of ``size`` voxels is cut into blocks and shared between threads.

    Parameters
    ----------
    size : number of voxels.
    fixed_idx : sorted flat indices of the voxels whose calculated amplitude is kept (masked + free).
    compiled : use the compiled loops (default: :func:`kernels_available`).
    """

    def __init__(self, size: int, fixed_idx: np.ndarray, compiled: bool | None = None) -> None:
        self.compiled = kernels_available() if compiled is None else bool(compiled and _kernels is not None)
        starts = np.arange(0, size, BLOCK)
        stops = np.minimum(starts + BLOCK, size)
        cuts = np.searchsorted(fixed_idx, np.append(starts, size))
        self.blocks = [(int(lo), int(hi)) for lo, hi in zip(starts, stops)]
        self.fixed = [fixed_idx[cuts[i]:cuts[i + 1]] - lo for i, (lo, _) in enumerate(self.blocks)]
        threads = n_threads() if size >= MIN_THREADED_SIZE else 1
        self.parts = [p for p in np.array_split(np.arange(len(self.blocks)), threads) if p.size]
        # one cache-sized float32 scratch block per part (blocked path)
        self.scratch = [np.empty(BLOCK, dtype=np.float32) for _ in self.parts] if not self.compiled else []
        # compiled path: one contiguous voxel range per thread, and the fixed voxels as one byte each
        edges = np.linspace(0, size, len(self.parts) + 1).astype(int)
        self.ranges = [(int(lo), int(hi)) for lo, hi in itertools.pairwise(edges)]
        self.fixed_bytes = None
        if self.compiled:
            self.fixed_bytes = np.zeros(size, dtype=np.uint8)
            self.fixed_bytes[fixed_idx] = 1

    def run(self, work: Callable[[int, np.ndarray], None]) -> None:
        """Call ``work(block_index, scratch)`` on every block, the parts on separate threads."""

        def part(k: int) -> None:
            scratch = self.scratch[k]
            for i in self.parts[k]:
                work(int(i), scratch)

        _spread(part, len(self.parts))

    def run_ranges(self, work: Callable[[int, int], None]) -> None:
        """Call ``work(lo, hi)`` on every range of voxels, the ranges on separate threads."""
        _spread(lambda k: work(*self.ranges[k]), len(self.ranges))


def _spread(part: Callable[[int], None], n: int) -> None:
    """``part(k)`` for k < n: k = 0 on the calling thread, the others on the pool; waits for all."""
    if n == 1:
        part(0)
        return
    futures = [_pool().submit(part, k) for k in range(1, n)]
    part(0)
    for f in futures:
        f.result()


class Coefficient(NamedTuple):
    """A real coefficient of the real-space update: ``inside`` on the support, ``outside`` elsewhere.

    Attributes
    ----------
    inside, outside : the two values (float32).
    support : the support, flat, one byte per voxel (compiled path).
    array : the coefficient as a float32 array of the data's shape (blocked path).
    consts : :func:`block_constants` of ``array`` (blocked path; None when not computed).
    """

    inside: np.float32
    outside: np.float32
    support: np.ndarray
    array: np.ndarray
    consts: list[float | None] | None


def block_constants(plan: BlockPlan, coef: np.ndarray) -> list[float | None]:
    """For each block of ``plan``: the value of ``coef`` when it is the same on the whole block, else None."""
    flat = coef.reshape(-1)
    out: list[float | None] = []
    for lo, hi in plan.blocks:
        b = flat[lo:hi]
        out.append(float(b[0]) if bool((b == b[0]).all()) else None)
    return out


def _coef(flat: np.ndarray, consts: list[float | None] | None, i: int, lo: int, hi: int) -> Any:
    k = None if consts is None else consts[i]
    return flat[lo:hi] if k is None else k


def modulus_step(plan: BlockPlan, psi: np.ndarray, amp: np.ndarray, floor: Any) -> None:
    """psi ← psi · amp / (|psi| + floor) in place, with ratio 1 on the plan's fixed voxels."""
    p_flat, a_flat = psi.reshape(-1), amp.reshape(-1)
    if plan.compiled:
        fb, fl = plan.fixed_bytes, float(floor)
        plan.run_ranges(lambda lo, hi: _kernels.modulus(p_flat, a_flat, fb, fl, lo, hi))
        return

    def work(i: int, scratch: np.ndarray) -> None:
        lo, hi = plan.blocks[i]
        p = p_flat[lo:hi]
        r = scratch[: hi - lo]
        np.abs(p, out=r)
        np.add(r, floor, out=r)  # 5× cheaper than np.maximum with a scalar; the same for |psi| > 1e-12
        np.divide(a_flat[lo:hi], r, out=r)
        f = plan.fixed[i]
        if f.size:
            r[f] = 1
        np.multiply(p, r, out=p)

    plan.run(work)


def _block_coef(coef: Coefficient, i: int, lo: int, hi: int) -> Any:
    k = None if coef.consts is None else coef.consts[i]
    return coef.array.reshape(-1)[lo:hi] if k is None else k


def scale_step(plan: BlockPlan, obj: np.ndarray, coef: Coefficient, out: np.ndarray | None = None) -> None:
    """out ← coef · obj; in place when ``out`` is None (ER's support projection), else into ``out``
    (HIO/RAAR: the previous iterate's share)."""
    o_flat = obj.reshape(-1)
    d_flat = o_flat if out is None else out.reshape(-1)
    if plan.compiled:
        s, c_in, c_out = coef.support, float(coef.inside), float(coef.outside)
        if out is None:
            plan.run_ranges(lambda lo, hi: _kernels.scale(o_flat, s, c_in, c_out, lo, hi))
        else:
            plan.run_ranges(lambda lo, hi: _kernels.share(o_flat, d_flat, s, c_in, c_out, lo, hi))
        return

    def work(i: int, _: np.ndarray) -> None:
        lo, hi = plan.blocks[i]
        np.multiply(o_flat[lo:hi], _block_coef(coef, i, lo, hi), out=d_flat[lo:hi])

    plan.run(work)


def combine_step(
    plan: BlockPlan, obj: np.ndarray, coef: Coefficient, prev: np.ndarray, next_coef: Coefficient
) -> None:
    """obj ← coef · obj + prev in place (HIO/RAAR); then prev ← next_coef · obj (the next iteration's share
    of this iterate, computed while the voxels are at hand)."""
    o_flat, p_flat = obj.reshape(-1), prev.reshape(-1)
    if plan.compiled:
        s = coef.support
        c = (float(coef.inside), float(coef.outside), float(next_coef.inside), float(next_coef.outside))
        plan.run_ranges(lambda lo, hi: _kernels.combine(o_flat, p_flat, s, *c, lo, hi))
        return

    def work(i: int, _: np.ndarray) -> None:
        lo, hi = plan.blocks[i]
        o, p = o_flat[lo:hi], p_flat[lo:hi]
        np.multiply(o, _block_coef(coef, i, lo, hi), out=o)
        np.add(o, p, out=o)
        np.multiply(o, _block_coef(next_coef, i, lo, hi), out=p)

    plan.run(work)
