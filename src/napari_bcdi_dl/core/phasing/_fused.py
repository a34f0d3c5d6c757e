"""Fused, cache-blocked, threaded element-wise steps of an iteration (numpy backend only).

numpy runs each ufunc over the whole array on one core, one pass per operation: the five passes of the
modulus projection and the one or two of the real-space update cost 30–45 % of an iteration next to two
multi-threaded FFTs at 128³. Here the flat array is cut into blocks of :data:`BLOCK` voxels (a complex64
block is 256 KiB and stays in the core's cache while every operation of the step runs on it), and the
blocks are shared between threads (numpy's ufuncs release the GIL). Results are bit-identical to the
plain ufunc sequence: the same operations run on the same values, only in a different order of voxels.

The real-space coefficient arrays (support, HIO/RAAR weights) are constant on most blocks (the support is
a compact blob: at 128³ about two thirds of the blocks lie wholly outside it). :func:`block_constants`
finds those blocks once per support; there the coefficient is a Python scalar, which numpy multiplies
3–4× faster than a float32 array it must first cast to complex64 (and the array is not read at all).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

#: voxels per block
BLOCK = 1 << 16
#: arrays below this size run on the calling thread
MIN_THREADED_SIZE = 1 << 18

_POOL: ThreadPoolExecutor | None = None


def n_threads() -> int:
    """Threads used for the element-wise steps (the cores available to this process)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


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
    """

    def __init__(self, size: int, fixed_idx: np.ndarray) -> None:
        starts = np.arange(0, size, BLOCK)
        stops = np.minimum(starts + BLOCK, size)
        cuts = np.searchsorted(fixed_idx, np.append(starts, size))
        self.blocks = [(int(lo), int(hi)) for lo, hi in zip(starts, stops)]
        self.fixed = [fixed_idx[cuts[i]:cuts[i + 1]] - lo for i, (lo, _) in enumerate(self.blocks)]
        threads = n_threads() if size >= MIN_THREADED_SIZE else 1
        self.parts = [p for p in np.array_split(np.arange(len(self.blocks)), threads) if p.size]
        # one cache-sized float32 scratch block per part
        self.scratch = [np.empty(BLOCK, dtype=np.float32) for _ in self.parts]

    def run(self, work: Callable[[int, np.ndarray], None]) -> None:
        """Call ``work(block_index, scratch)`` on every block, the parts on separate threads."""

        def part(k: int) -> None:
            scratch = self.scratch[k]
            for i in self.parts[k]:
                work(int(i), scratch)

        if len(self.parts) == 1:
            part(0)
            return
        futures = [_pool().submit(part, k) for k in range(1, len(self.parts))]
        part(0)
        for f in futures:
            f.result()


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


def scale_step(
    plan: BlockPlan,
    obj: np.ndarray,
    coef: np.ndarray,
    out: np.ndarray | None = None,
    consts: list[float | None] | None = None,
) -> None:
    """out ← coef · obj; in place when ``out`` is None (ER's support projection), else into ``out``
    (HIO/RAAR: the previous iterate's share). ``consts``: :func:`block_constants` of ``coef``."""
    o_flat, c_flat = obj.reshape(-1), coef.reshape(-1)
    d_flat = o_flat if out is None else out.reshape(-1)

    def work(i: int, _: np.ndarray) -> None:
        lo, hi = plan.blocks[i]
        np.multiply(o_flat[lo:hi], _coef(c_flat, consts, i, lo, hi), out=d_flat[lo:hi])

    plan.run(work)


def combine_step(
    plan: BlockPlan,
    obj: np.ndarray,
    coef: np.ndarray,
    prev: np.ndarray,
    next_coef: np.ndarray | None = None,
    consts: list[float | None] | None = None,
    next_consts: list[float | None] | None = None,
) -> None:
    """obj ← coef · obj + prev in place (HIO/RAAR); then, with ``next_coef``, prev ← next_coef · obj (the
    next iteration's share of this iterate, computed while the block is in cache). ``consts`` and
    ``next_consts``: :func:`block_constants` of the coefficients."""
    o_flat, c_flat, p_flat = obj.reshape(-1), coef.reshape(-1), prev.reshape(-1)
    n_flat = None if next_coef is None else next_coef.reshape(-1)

    def work(i: int, _: np.ndarray) -> None:
        lo, hi = plan.blocks[i]
        o, p = o_flat[lo:hi], p_flat[lo:hi]
        np.multiply(o, _coef(c_flat, consts, i, lo, hi), out=o)
        np.add(o, p, out=o)
        if n_flat is not None:
            np.multiply(o, _coef(n_flat, next_consts, i, lo, hi), out=p)

    plan.run(work)
