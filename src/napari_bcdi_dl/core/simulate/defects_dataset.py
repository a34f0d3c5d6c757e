"""Labelled dislocation datasets (``bcdi-dl dataset defects``): sharded HDF5 like the phase/inpaint sets.

Layout: ``OUTDIR/manifest.json`` (the format of :mod:`.datasets`, ``kind = "defects"``) + ``shard_NNNNN.h5``
holding ``intensity`` (n, S, S, S) float32 noisy counts, ``label`` (n,) int8 index into
:data:`.dislocations.LABELS` (none, edge, screw, mixed), ``params`` (n,) JSON strings and ``index`` (n,)
int64. Sample ``i`` is drawn from ``SeedSequence(seed, spawn_key=(3, 0, i))`` with its label cycling
through the four classes (``i % 4``: balanced sets), so a set does not depend on workers, shard size or
interruptions; a second run with the same arguments finishes an interrupted one. Read with
:func:`.datasets.iter_shards` / :func:`.datasets.load_dataset`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from ..errors import BCDIError, Cancelled
from ..io.atomic import atomic_path
from ..progress import CancelToken, ProgressFn
from .datasets import DATASET_SIZES
from .dislocations import DEFECT_RANGES, LABELS, simulate_defect_pattern
from .shards import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    _write_manifest,
    dataset_folder,
    fill_shards,
    read_manifest,
    shard_name,
    shard_stop,
    shard_tick,
)

KIND = "defects"
_KIND_KEY = 3
KEYS = ["intensity", "label", "params", "index"]


def defect_sample_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The seed of sample ``index`` of a defects set made with ``seed``."""
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(_KIND_KEY, 0, int(index)))


def draw_defect_sample(size: int, seed: int, index: int, g_direction: str = "random") -> dict:
    """Sample ``index`` of a defects set: noisy intensity, label index (``index % 4``) and parameters
    (``g_direction``: see :func:`.dislocations.simulate_defect_pattern`)."""
    label = LABELS[index % len(LABELS)]
    ranges = None if g_direction == "random" else {"g_direction": g_direction}
    p = simulate_defect_pattern(size, seed=defect_sample_seed(seed, index), label=label, ranges=ranges)
    params = dict(p.params, seed={"dataset_seed": int(seed), "index": int(index)})
    return {"intensity": p.intensity, "label": LABELS.index(label), "params": params}


def _write_shard(outdir: str, index: int, start: int, count: int, size: int, seed: int,
                 tick=None, stop=None, g_direction: str = "random") -> tuple[int, int]:
    import h5py

    target = Path(outdir) / shard_name(index)
    with atomic_path(target) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(format=FORMAT, version=FORMAT_VERSION, kind=KIND, size=size, seed=seed,
                       start=start, count=count)
        inten = f.create_dataset("intensity", shape=(count, size, size, size), dtype="float32",
                                 chunks=(1, size, size, size), compression="lzf")
        labels = f.create_dataset("label", shape=(count,), dtype="int8")
        params = f.create_dataset("params", shape=(count,), dtype=h5py.string_dtype())
        f.create_dataset("index", data=np.arange(start, start + count, dtype=np.int64))
        for j in range(count):
            if shard_stop(stop):
                raise Cancelled(f"shard {index} cancelled after {j} of {count} samples")
            s = draw_defect_sample(size, seed, start + j, g_direction)
            inten[j] = s["intensity"]
            labels[j] = s["label"]
            params[j] = json.dumps(s["params"])
            shard_tick(tick)
    return index, count


def generate_defects_dataset(outdir: os.PathLike | str, n: int, size: int = 64, seed: int = 0,
                             workers: int | None = None, shard_size: int | None = None,
                             progress: ProgressFn | None = None, cancel: CancelToken | None = None,
                             g_direction: str = "random") -> dict:
    """Generate (or finish) a labelled dislocation set of ``n`` patterns of ``size``³ in ``outdir``.

    ``workers`` (default: all cores) > 1 writes shards in that many processes, 1 in this process; either way
    through ``datasets.fill_shards``, as the other sets (resume, per-sample progress, cancel).
    ``g_direction``: ``"random"`` (default, the shipped set) or ``"z"``/``"y"``/``"x"``: G along that axis.
    Returns the manifest (``complete`` True).
    """
    if size not in DATASET_SIZES:
        raise BCDIError(f"dataset size {size} is not one of 32, 64, 128: choose one of them")
    if int(n) < 1:
        raise BCDIError(f"number of samples {n} must be at least 1")
    if int(seed) < 0:
        raise BCDIError(f"seed {seed} must be a non-negative integer")
    n, size, seed = int(n), int(size), int(seed)
    outdir = dataset_folder(outdir)
    if g_direction not in ("random", "z", "y", "x"):
        raise BCDIError(f"G direction {g_direction!r} unknown: use random, z, y or x")
    wanted = {"kind": KIND, "n": n, "size": size, "seed": seed}
    if g_direction != "random":
        wanted["g_direction"] = g_direction
    if (outdir / MANIFEST).exists():
        manifest = read_manifest(outdir)
        old = {k: manifest.get(k) for k in wanted}
        if old != wanted or (shard_size is not None and int(shard_size) != manifest["shard_size"]):
            raise BCDIError(f"{outdir} holds a dataset made with {old}, not {wanted}: resume it with the "
                            "same arguments or choose another folder")
    else:
        if any(outdir.iterdir()):
            raise BCDIError(f"{outdir} is not empty and holds no dataset manifest: choose an empty or new folder")
        ss = int(shard_size) if shard_size else int(max(1, min(64, math.ceil(n / 8))))
        if ss < 1:
            raise BCDIError(f"shard size {shard_size} must be at least 1")
        manifest = {
            "format": FORMAT, "version": FORMAT_VERSION, **wanted, "patch": None, "shard_size": ss,
            "n_shards": math.ceil(n / ss), "keys": list(KEYS), "labels": list(LABELS),
            "ranges": DEFECT_RANGES, "shards": {}, "complete": False,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        _write_manifest(outdir, manifest)
    write = functools.partial(_write_shard, str(outdir), size=size, seed=seed, g_direction=g_direction)
    return fill_shards(outdir, manifest, write, workers=workers, progress=progress, cancel=cancel)
