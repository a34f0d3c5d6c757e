"""Training sets for the two CNNs: reproducible, resumable, parallel, sharded HDF5.

Layout: ``OUTDIR/manifest.json`` + ``OUTDIR/shard_NNNNN.h5``. Sample ``i`` is drawn from its own seed,
``SeedSequence(seed, spawn_key=(kind, i))``, so its content does not depend on the number of workers, the
shard size, or on how many times the run was interrupted and resumed. A shard is written to a temporary
file and renamed when complete (``core/io/atomic.atomic_path``); the manifest lists the completed shards
and is itself rewritten atomically, so an interrupted run leaves only whole shards behind and a second run
with the same arguments finishes the job.

Phase sets (``kind="phase"``), arrays (n, S, S, S):
``intensity`` float32 noisy counts, ``expected`` float32 noise-free intensity, ``phase`` float32
reciprocal-space phase, ``support`` uint8, ``obj`` complex64 (scaled so that ``|FT(obj)|² = expected``).

Inpainting sets (``kind="inpaint"``), arrays (n, 32, 32, 32), cropped from patterns of size S:
``patches`` float32 noisy counts (complete: the gap voxels hold the true counts, apply ``mask`` yourself),
``expected`` float32 noise-free intensity, ``mask`` uint8 gap (1 = gap), ``context`` float32 the coarse
view of the patch's surroundings (``core.gaps.extract_context`` of the noise-free pattern: the 64³ region
centred on the patch, averaged over 2³ blocks; NaN outside the pattern). Sets made before ``context``
existed lack it; only the context model needs it.

Both: ``params`` (n,) JSON strings with every generation parameter of each sample, and ``index`` (n,) int64
global sample numbers.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from ..errors import BCDIError, Cancelled
from ..gaps import extract_context
from ..io.atomic import atomic_path
from ..progress import CancelToken, ProgressFn
from .diffraction import GapSpec, poisson_counts, simulate_pattern
from .fields import FIELDS
from .shapes import EXTRA_SHAPES, SHAPES
from .shards import (  # noqa: F401  (re-exported: the dataset API of the earlier module)
    _PART_RE,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    _write_manifest,
    dataset_folder,
    fill_shards,
    iter_shards,
    load_dataset,
    read_manifest,
    shard_name,
    shard_stop,
    shard_tick,
)

DATASET_KINDS = ("phase", "inpaint")
DATASET_SIZES = (32, 64, 128)
PATCH = 32
_KIND_KEY = {"phase": 1, "inpaint": 2}

#: Ranges the datasets draw from (also written to the manifest). See docs/simulation.md.
PHASE_RANGES = {
    "shapes": list(SHAPES),
    "fields": list(FIELDS),
    "low_strain_fraction": 0.2,
    "phase_range_low": [0.0, 2 * math.pi],
    "phase_range_high": [2 * math.pi, 5 * math.pi],
    "oversampling": [2.0, 5.0],
    "max_counts_log10": [4.0, 8.0],
    "edge_sigma": [0.3, 1.0],
    "density_noise": [0.0, 0.1],
    "density_noise_fraction": 0.5,
}
INPAINT_RANGES = {
    **PHASE_RANGES,
    "gap_width": [1, 12],
    "cross_fraction": 0.2,
    "gap_centred_fraction": 0.85,
    "gap_jitter": 3,
    "patch_near_centre_fraction": 0.25,
    "patch_min_peak_counts": 20.0,
}


def sample_seed(seed: int, kind: str, index: int, stream: int = 0) -> np.random.SeedSequence:
    """The seed of sample ``index`` of a ``kind`` dataset made with ``seed``.

    ``stream`` 0 seeds patterns (sample ``index`` of a phase set, pattern ``index`` of an inpainting set),
    stream 1 seeds the crop, gap and noise of inpainting patch ``index``.
    """
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(_KIND_KEY[kind], int(stream), int(index)))


def _draw_pattern_kwargs(rng: np.random.Generator, ranges: dict) -> dict:
    shape = str(rng.choice(ranges["shapes"]))
    low = rng.random() < ranges["low_strain_fraction"]
    pr = float(rng.uniform(*(ranges["phase_range_low"] if low else ranges["phase_range_high"])))
    fields = [f for f in ranges["fields"] if not (f == "screw" and pr < 2 * math.pi)]
    field = str(rng.choice(fields))
    os3 = [float(v) for v in rng.uniform(*ranges["oversampling"], size=3)]
    counts = float(10 ** rng.uniform(*ranges["max_counts_log10"]))
    sigma = float(rng.uniform(*ranges["edge_sigma"]))
    dn = (
        float(rng.uniform(*ranges["density_noise"]))
        if rng.random() < ranges["density_noise_fraction"]
        else 0.0
    )
    return dict(
        shape=shape,
        field=field,
        phase_range=pr,
        oversampling=os3,
        max_counts=counts,
        edge_sigma=sigma,
        density_noise=dn,
        orientation="random",
    )


#: Range entries a dataset may override (``generate_dataset(..., overrides=...)``, ``bcdi-dl dataset``
#: ``--shapes --low-strain-fraction --gap-through-peak --edge-sigma --gap-peak-offset``), with their
#: checks.
OVERRIDABLE = ("shapes", "low_strain_fraction", "gap_through_peak_fraction", "edge_sigma",
               "gap_peak_offset", "phase_range_low")


def with_overrides(ranges: dict, overrides: dict | None) -> dict:
    """``ranges`` with the entries of ``overrides`` (see :data:`OVERRIDABLE`) replaced; None: unchanged."""
    if not overrides:
        return ranges
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise BCDIError(f"dataset ranges {', '.join(unknown)} cannot be overridden: use {', '.join(OVERRIDABLE)}")
    out = dict(ranges)
    for key, value in overrides.items():
        if key == "shapes":
            shapes = [str(v) for v in value]
            known = SHAPES + EXTRA_SHAPES
            bad = [v for v in shapes if v not in known]
            if not shapes or bad:
                raise BCDIError(f"unknown shape famil{'ies' if len(bad) > 1 else 'y'} "
                                f"{', '.join(bad) or '(none)'}: choose among {', '.join(known)}")
            out[key] = shapes
        elif key == "edge_sigma":
            lo, hi = _pair_range(value, "edge sigma range", "widths")
            out[key] = [lo, hi]
        elif key == "gap_peak_offset":
            out[key] = list(_pair_range(value, "gap peak offset", "distances", int, 16))
        elif key == "phase_range_low":
            out[key] = list(_pair_range(value, "low-strain phase range", "phase ranges", float,
                                        2 * math.pi, units="rad"))
        else:
            v = float(value)
            if not 0.0 <= v <= 1.0:
                raise BCDIError(f"{key.replace('_', ' ')} {value} must be a fraction in [0, 1]")
            out[key] = v
    return out


def _pair_range(value, what: str, noun: str, cast=float, top: float = 3.0, units: str = "voxels") -> tuple:
    """A range override ``LO HI`` (in ``units``) with ``0 <= lo <= hi <= top``; ``what`` and ``noun`` name it
    in the error (e.g. "edge sigma range", "widths")."""
    try:
        lo, hi = (cast(v) for v in value)
    except (TypeError, ValueError):
        raise BCDIError(f"{what} {value!r} must be two {noun} LO HI in {units}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo <= hi <= top):
        raise BCDIError(f"{what} {lo:g}–{hi:g} must satisfy 0 <= LO <= HI <= {top:.4g} {units}")
    return lo, hi


def draw_phase_sample(size: int, seed: np.random.SeedSequence | int, overrides: dict | None = None) -> dict:
    """One sample of a phase set: arrays of ``size``³ and its parameters (dict)."""
    rng = np.random.default_rng(seed)
    kw = _draw_pattern_kwargs(rng, with_overrides(PHASE_RANGES, overrides))
    p = simulate_pattern(size, seed=rng, noise=True, gap=None, workers=1, **kw)
    return {
        "intensity": p.intensity,
        "expected": p.expected,
        "phase": p.reciprocal_phase,
        "support": p.support,
        "obj": p.obj,
        "params": p.params,
    }


def _patch_origin(expected: np.ndarray, rng: np.random.Generator, ranges: dict) -> tuple[list[int], str]:
    """Origin of a 32³ patch: mostly away from the peak centre, sometimes on it, always with signal."""
    n = np.array(expected.shape)
    if np.all(n == PATCH):
        return [0, 0, 0], "whole"
    c = n // 2
    lim = n // 2 - PATCH // 2  # largest offset of the patch centre from the peak centre
    near = PATCH // 4
    for _ in range(20):
        if rng.random() < ranges["patch_near_centre_fraction"]:
            off = rng.integers(-np.minimum(near, lim), np.minimum(near, lim) + 1)
            where = "near"
        else:
            while True:  # away: at least PATCH/4 off the centre along one axis at least
                off = rng.integers(-lim, lim + 1)
                if np.max(np.abs(off)) >= min(near, int(lim.max())):
                    break
            where = "away"
        o = c + off - PATCH // 2
        sl = tuple(slice(a, a + PATCH) for a in o)
        if float(expected[sl].max()) >= ranges["patch_min_peak_counts"]:
            return [int(v) for v in o], where
    return [int(v) for v in c - PATCH // 2], "centre"


def _patch_gap(rng: np.random.Generator, ranges: dict) -> GapSpec:
    """A gap for a 32³ patch: line or (one in five) cross, widths 1–12, mostly centred, sometimes anywhere."""
    cross = rng.random() < ranges["cross_fraction"]
    axes = (1, 2) if cross else (int(rng.choice((1, 2))),)
    slabs = []
    for axis in axes:
        w = int(rng.integers(ranges["gap_width"][0], ranges["gap_width"][1] + 1))
        if rng.random() < ranges["gap_centred_fraction"]:
            j = ranges["gap_jitter"]
            start = int(np.clip(round(PATCH / 2 - w / 2 + rng.integers(-j, j + 1)), 0, PATCH - w))
        else:  # anywhere, possibly cut by the patch border
            start = int(rng.integers(-(w - 1), PATCH))
            w = min(w, PATCH - max(start, 0)) if start >= 0 else w + start
            start = max(start, 0)
        slabs.append((axis, start, w))
    return GapSpec(tuple(slabs))


def draw_inpaint_pattern(size: int, seed: np.random.SeedSequence | int, overrides: dict | None = None):
    """The noise-free ``size``³ pattern inpainting patches are cropped from (a :class:`SimulatedPattern`)."""
    rng = np.random.default_rng(seed)
    kw = _draw_pattern_kwargs(rng, with_overrides(INPAINT_RANGES, overrides))
    return simulate_pattern(size, seed=rng, noise=False, gap=None, compute_phase=False, workers=1, **kw)


def _through_peak_origin(expected: np.ndarray, gap: GapSpec, rng: np.random.Generator, ranges: dict
                         ) -> tuple[list[int], str]:
    """Origin of a 32³ patch whose gap slabs lie in the planes of the pattern centre (±1 voxel), the
    patch anywhere along them: one of the windows of inference along a detector gap through the peak.
    With a ``gap_peak_offset`` range ``(lo, hi)``, ``hi > 0``, the slabs lie *beside* the peak instead,
    their near edge ``lo``–``hi`` voxels from it (a gap next to the peak)."""
    n = np.array(expected.shape)
    c = n // 2
    lim = n // 2 - PATCH // 2
    lo, hi = ranges.get("gap_peak_offset", (0, 0))
    for _ in range(20):
        o = c + rng.integers(-lim, lim + 1) - PATCH // 2
        for axis, start, w in gap.slabs:
            if hi > 0:  # beside the peak: the slab's near edge d voxels from it, on either side
                d = int(rng.integers(lo, hi + 1))
                at = c[axis] + d - start if rng.random() < 0.5 else c[axis] - d - (w - 1) - start
            else:
                at = c[axis] - round(start + w / 2) + rng.integers(-1, 2)
            o[axis] = int(np.clip(at, 0, n[axis] - PATCH))
        sl = tuple(slice(a, a + PATCH) for a in o)
        if float(expected[sl].max()) >= ranges["patch_min_peak_counts"]:
            return [int(v) for v in o], "gap_beside_peak" if hi > 0 else "gap_through_peak"
    return _patch_origin(expected, rng, ranges)


def crop_inpaint_sample(pattern, seed: np.random.SeedSequence | int, overrides: dict | None = None) -> dict:
    """A 32³ patch of ``pattern``: crop, Poisson noise (on the patch only) and a gap mask."""
    rng = np.random.default_rng(seed)
    ranges = with_overrides(INPAINT_RANGES, overrides)
    through = ranges.get("gap_through_peak_fraction", 0.0)
    if through > 0 and rng.random() < through:  # no draw at 0: the default sets keep their streams
        gap = _patch_gap(rng, ranges)
        origin, where = _through_peak_origin(pattern.expected, gap, rng, ranges)
    else:
        origin, where = _patch_origin(pattern.expected, rng, ranges)
        gap = _patch_gap(rng, ranges)
    sl = tuple(slice(a, a + PATCH) for a in origin)
    expected = np.ascontiguousarray(pattern.expected[sl])
    params = dict(
        pattern.params, noise=True, patch_origin=origin, patch_position=where, patch_gap=gap.to_dict()
    )
    return {
        "patches": poisson_counts(expected, rng),
        "expected": expected,
        "mask": gap.mask((PATCH,) * 3),
        "context": extract_context(pattern.expected, np.array([origin]), PATCH)[0],
        "params": params,
    }


def draw_inpaint_sample(size: int, seed: np.random.SeedSequence | int, pattern_seed=None) -> dict:
    """One sample of an inpainting set: a 32³ patch of a ``size``³ pattern, its gap mask and parameters.

    The pattern is drawn from ``pattern_seed`` (default: ``seed`` itself), the crop, noise and gap from
    ``seed``.
    """
    return crop_inpaint_sample(
        draw_inpaint_pattern(size, seed if pattern_seed is None else pattern_seed), seed
    )


_LAYOUT = {
    "phase": {
        "intensity": "float32",
        "expected": "float32",
        "phase": "float32",
        "support": "uint8",
        "obj": "complex64",
    },
    "inpaint": {"patches": "float32", "expected": "float32", "mask": "uint8", "context": "float32"},
}


def dataset_keys(kind: str) -> list[str]:
    """Array names of a ``kind`` dataset (besides ``params`` and ``index``)."""
    return list(_LAYOUT[kind])


def default_patches_per_pattern(kind: str, size: int) -> int:
    """Inpainting patches cropped from one simulated pattern: 1, but 4 from 128³ patterns (their FFT is the
    cost; the crops, gaps and noise of the four patches are independent)."""
    return 4 if kind == "inpaint" and size >= 128 else 1


def default_shard_size(kind: str, size: int, n: int) -> int:
    """About 64 MB of arrays per shard, and at least 16 shards when ``n`` allows (parallelism)."""
    s = PATCH if kind == "inpaint" else size
    per = sum(np.dtype(t).itemsize for t in _LAYOUT[kind].values()) * s**3
    by_bytes = max(1, (64 << 20) // per)
    return int(max(1, min(by_bytes, math.ceil(n / 16), 1024)))


def _write_shard(
    kind: str,
    outdir: str,
    index: int,
    start: int,
    count: int,
    size: int,
    seed: int,
    per_pattern: int = 1,
    tick=None,
    stop=None,
    overrides: dict | None = None,
) -> tuple[int, int]:
    """Generate samples ``start .. start+count-1`` into ``outdir/shard_{index}.h5`` (atomically)."""
    import h5py

    target = Path(outdir) / shard_name(index)
    layout = _LAYOUT[kind]
    s = PATCH if kind == "inpaint" else size
    with atomic_path(target) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(
                format=FORMAT,
                version=FORMAT_VERSION,
                kind=kind,
                size=size,
                seed=seed,
                start=start,
                count=count,
            )
            dsets = {
                k: f.create_dataset(k, shape=(count, s, s, s), dtype=t, chunks=(1, s, s, s))
                for k, t in layout.items()
            }
            params = f.create_dataset("params", shape=(count,), dtype=h5py.string_dtype())
            f.create_dataset("index", data=np.arange(start, start + count, dtype=np.int64))
            cache: dict = {}
            for j in range(count):
                if shard_stop(stop):
                    raise Cancelled(f"shard {index} cancelled after {j} of {count} samples")
                i = start + j
                if kind == "phase":
                    sample = draw_phase_sample(size, sample_seed(seed, kind, i), overrides)
                else:
                    p = i // per_pattern
                    if p not in cache:
                        cache.clear()
                        cache[p] = draw_inpaint_pattern(size, sample_seed(seed, kind, p), overrides)
                    sample = crop_inpaint_sample(cache[p], sample_seed(seed, kind, i, stream=1), overrides)
                for k in layout:
                    dsets[k][j] = sample[k]
                params[j] = json.dumps(
                    dict(sample["params"], seed={"dataset_seed": int(seed), "index": int(i)})
                )
                shard_tick(tick)
    return index, count


def generate_dataset(
    kind: str,
    outdir: os.PathLike | str,
    n: int,
    size: int = 64,
    seed: int = 0,
    workers: int | None = None,
    shard_size: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    patches_per_pattern: int | None = None,
    overrides: dict | None = None,
) -> dict:
    """Generate (or finish) a simulated dataset of ``n`` samples in ``outdir``.

    Parameters
    ----------
    kind : ``"phase"`` (full patterns and their reciprocal phase) or ``"inpaint"`` (32³ patches with gaps).
    outdir : folder (created if missing). A folder holding a manifest made with the same arguments is
        resumed: completed shards are kept, the others are (re)generated.
    n : number of samples.
    size : pattern size S (32, 64 or 128); inpainting patches are 32³ crops of S³ patterns.
    seed : dataset seed; sample ``i`` uses :func:`sample_seed` ``(seed, kind, i)``.
    workers : processes (default: all cores); 1 runs in this process.
    shard_size : samples per shard (default :func:`default_shard_size`).
    progress, cancel : see ``core/progress.py``; progress counts samples.
    patches_per_pattern : inpainting sets: patches cropped from each simulated pattern
        (default :func:`default_patches_per_pattern`); patch ``i`` comes from pattern ``i // k``.
    overrides : replaced entries of the default ranges (keys :data:`OVERRIDABLE`): ``shapes`` (families
        to draw from, e.g. ``["rounded", "wulff"]``; the default is ``SHAPES``, ``EXTRA_SHAPES`` only when
        given), ``low_strain_fraction``, ``gap_through_peak_fraction`` (inpainting: the patch is placed so
        that its gap lies in the plane of the Bragg peak, as the windows along a detector gap through
        the peak are; default 0), ``edge_sigma`` (``[lo, hi]``: width range in voxels of the crystal's
        smoothed edge; the default 0.3–1 damps the far wings of the pattern, 0–0.3 gives the slow
        Porod fall-off of measured patterns). Recorded in the manifest; a set is resumed only with the same ones.

    Returns
    -------
    The manifest (dict), ``complete`` True.
    """
    if kind not in DATASET_KINDS:
        raise BCDIError(f"unknown dataset kind {kind!r}: use 'phase' or 'inpaint'")
    if size not in DATASET_SIZES:
        raise BCDIError(f"dataset size {size} is not one of 32, 64, 128: choose one of them")
    if int(n) < 1:
        raise BCDIError(f"number of samples {n} must be at least 1")
    if shard_size is not None and int(shard_size) < 1:
        raise BCDIError(f"shard size {shard_size} must be at least 1")
    n, size, seed = int(n), int(size), int(seed)
    if patches_per_pattern is not None and (kind != "inpaint" or int(patches_per_pattern) < 1):
        raise BCDIError("patches per pattern applies to inpainting sets only and must be at least 1")
    per_pattern = int(patches_per_pattern or default_patches_per_pattern(kind, size))
    if seed < 0:
        raise BCDIError(f"seed {seed} must be a non-negative integer")
    outdir = dataset_folder(outdir)

    ranges = with_overrides(INPAINT_RANGES if kind == "inpaint" else PHASE_RANGES, overrides)
    overrides = {k: ranges[k] for k in overrides} if overrides else None
    wanted = {"kind": kind, "n": n, "size": size, "seed": seed, "patches_per_pattern": per_pattern}
    if overrides:
        wanted["overrides"] = overrides
    if (outdir / MANIFEST).exists():
        manifest = read_manifest(outdir)
        old = {k: manifest.get(k) for k in wanted}
        old["patches_per_pattern"] = manifest.get("patches_per_pattern", 1)  # absent from the first manifests
        if manifest.get("overrides"):  # a set made with overrides resumes only with the same ones
            old["overrides"] = manifest["overrides"]
        if old != wanted or (shard_size is not None and int(shard_size) != manifest["shard_size"]):
            raise BCDIError(
                f"{outdir} holds a dataset made with {old} and shard size {manifest['shard_size']}, "
                f"not {wanted}: resume it with the same arguments or choose another folder"
            )
        if manifest.get("version") != FORMAT_VERSION:
            raise BCDIError(
                f"{outdir} holds a dataset of format version {manifest.get('version')}: use a new folder"
            )
    else:
        if any(p.name != MANIFEST for p in outdir.iterdir() if not _PART_RE.match(p.name)):
            raise BCDIError(
                f"{outdir} is not empty and holds no dataset manifest: choose an empty or new folder"
            )
        ss = int(shard_size) if shard_size is not None else default_shard_size(kind, size, n)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            **wanted,
            "patch": PATCH if kind == "inpaint" else None,
            "shard_size": ss,
            "n_shards": math.ceil(n / ss),
            "keys": dataset_keys(kind) + ["params", "index"],
            "ranges": ranges,
            "shards": {},
            "complete": False,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        _write_manifest(outdir, manifest)

    import functools

    write = functools.partial(_write_shard, kind, str(outdir), size=size, seed=seed, per_pattern=per_pattern,
                              overrides=overrides)
    return fill_shards(outdir, manifest, write, workers=workers, progress=progress, cancel=cancel)
