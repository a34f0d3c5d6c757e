"""Training data and the training entry point of the inpainting model.

Data: inpainting shards of ``core.simulate`` (``bcdi-dl dataset inpaint``): 32³ ``expected`` (noise-free)
intensities and their ``mask``. Every training sample is re-drawn on the fly (:func:`augment`):

* one of the 48 symmetries of the cube (axis permutation × flips), applied to pattern and mask;
* a fresh noise level: the expected counts are scaled by ``10^U(-1, 0.5)`` and Poisson-sampled, so the
  model sees each patch at many photon budgets and never the same noise twice;
* the dataset's own gap (half the time) or a random gap from :func:`random_gap_mask`: lines and crosses
  of widths 1–12 along any axis, mostly centred, sometimes off-centre, cut by the window border or
  covering only part of the plane — every geometry the sliding windows of inference produce.

The context model (``--context``) also gets the coarse view of each patch's surroundings (the sets'
``context``: block means of the noise-free pattern), with the same symmetry and scale, Poisson noise of a
mean of 2³ counts, and the window's gap continued across the 64³ region (:func:`random_gap_mask` with
``region``; the sets' own gaps, which cross the window, by edge replication).

The target is the *noise-free* expected intensity, in the scale of the noisy input (the best estimate
of a gap voxel is its expectation; see ``../shared/notes/measuring-model-quality.md``). Held-out sets
are used as generated (their own noise and gap), without augmentation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import BCDIError
from .inpaint import PATCH, encode_context, encode_target, encode_windows

Batch = tuple[np.ndarray, np.ndarray]


# ------------------------------------------------------------------------------------------------ data
def load_patches(dirs: Sequence[os.PathLike | str], limit: int | None = None,
                 keys: Sequence[str] = ("expected", "mask")) -> dict[str, np.ndarray]:
    """Concatenate the inpainting datasets in ``dirs`` (BCDIError for an unfinished one, unless its completed
    shards hold the first ``limit`` samples)."""
    from ..core.simulate.datasets import iter_shards, read_manifest

    parts: dict[str, list] = {k: [] for k in keys}
    n = 0
    for d in dirs:
        m = read_manifest(d)
        if m.get("kind") != "inpaint":
            raise BCDIError(f"{d} is a {m.get('kind')!r} dataset; give inpainting sets "
                            "('bcdi-dl dataset inpaint')")
        for shard in iter_shards(d, keys=list(keys), need=None if limit is None else limit - n):
            for k in keys:
                parts[k].append(shard[k])
            n += len(shard[keys[0]])
            if limit is not None and n >= limit:
                break
        if limit is not None and n >= limit:
            break
    if n == 0:
        raise BCDIError(f"no completed shard in {', '.join(str(d) for d in dirs)}: generate data first")
    out = {k: np.concatenate(v) for k, v in parts.items()}
    if limit is not None:
        out = {k: v[:limit] for k, v in out.items()}
    return out


def random_gap_mask(rng: np.random.Generator, size: int = PATCH, max_width: int = 12,
                    region: int | None = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """A random gap of a ``size``³ window: line (55 %), cross (40 %) or triple cross (5 %).

    Widths 1–``max_width``; 70 % centred (±3 voxels), otherwise anywhere, possibly cut by the window
    border; 15 % of slabs cover only part of their plane (a partial gap ending inside the window).
    With ``region`` (an edge larger than ``size``, e.g. 64), returns ``(window mask, region mask)``: the
    same gap in the ``region``³ block centred on the window, its slabs continued beyond the window (the
    random draws, hence the window's mask, are those of ``region=None``).
    """
    off = 0 if region is None else (int(region) - size) // 2
    n = size + 2 * off
    big = np.zeros((n,) * 3, dtype=np.uint8)
    r = rng.random()
    n_slabs = 1 if r < 0.55 else (2 if r < 0.95 else 3)
    axes = rng.permutation(3)[:n_slabs]
    for ax in axes:
        w = int(rng.integers(1, max_width + 1))
        if rng.random() < 0.7:
            start = int(np.clip(size // 2 - w // 2 + rng.integers(-3, 4), 0, size - w))
        else:
            start = int(rng.integers(-(w - 1), size))
        sl = [slice(None)] * 3
        sl[ax] = slice(max(0, start + off), start + w + off)
        if rng.random() < 0.15:
            other = int(rng.choice([a for a in range(3) if a != ax]))
            cut = int(rng.integers(size // 4, 3 * size // 4)) + off
            sl[other] = slice(0, cut) if rng.random() < 0.5 else slice(cut, n)
        big[tuple(sl)] = 1
    m = np.ascontiguousarray(big[(slice(off, off + size),) * 3])
    return m if region is None else (m, big)


def _symmetry(rng: np.random.Generator) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    return tuple(int(a) for a in rng.permutation(3)), tuple(bool(b) for b in rng.random(3) < 0.5)


def _apply_symmetry(a: np.ndarray, perm: tuple[int, int, int], flips: tuple[bool, bool, bool]) -> np.ndarray:
    a = np.transpose(a, perm)
    sl = tuple(slice(None, None, -1) if f else slice(None) for f in flips)
    return a[sl]


def coherence_blur(expected: np.ndarray, rng: np.random.Generator, max_sigma: float) -> np.ndarray:
    """``expected`` convolved with a Gaussian of per-axis widths ``U(0, max_sigma)`` voxels.

    The measured intensity is the coherent pattern convolved with the Fourier transform of the beam's
    mutual coherence function (partial coherence) and with the detector's point-spread function; both
    fill the fringe minima. Edges use ``mode="nearest"``; the photon total is kept.
    """
    from scipy.ndimage import gaussian_filter

    sigma = rng.uniform(0.0, max_sigma, size=3)
    return gaussian_filter(np.asarray(expected, np.float32), sigma=sigma, mode="nearest")


def augment(expected: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
            scale_range: tuple[float, float] = (-1.0, 0.5), p_dataset_mask: float = 0.5,
            blur: float = 0.0, p_blur: float = 0.5, context: np.ndarray | None = None) -> tuple:
    """One augmented sample: ``(noisy counts, noise-free counts, gap mask)`` (see the module docstring).

    With ``blur > 0``, a fraction ``p_blur`` of the samples is blurred first (:func:`coherence_blur`); the
    random stream of ``blur = 0`` is the one of the runs made before the option existed.
    With ``context`` (the set's block means around the patch), returns a fourth array: its noisy counts
    with the gap's blocks (and the blocks outside the pattern) NaN; the gap is then always a random one.
    """
    if context is not None:
        return _augment_context(expected, mask, context, rng, scale_range, p_dataset_mask)
    perm, flips = _symmetry(rng)
    e = _apply_symmetry(expected, perm, flips)
    if blur > 0 and rng.random() < p_blur:
        e = coherence_blur(e, rng, blur)
    e = e * np.float32(10 ** rng.uniform(*scale_range))
    if rng.random() < p_dataset_mask and mask.any():
        m = _apply_symmetry(mask, perm, flips)
    else:
        m = random_gap_mask(rng, expected.shape[0])
    noisy = rng.poisson(np.maximum(e, 0).astype(np.float64)).astype(np.float32)
    if (m == 0).sum() == 0:
        m = random_gap_mask(rng, expected.shape[0])
    return noisy, e.astype(np.float32), np.ascontiguousarray(m)


def _augment_context(expected, mask, context, rng, scale_range, p_dataset_mask) -> tuple:
    """:func:`augment` with the context: the same draws in the same order, then the context's noise."""
    perm, flips = _symmetry(rng)
    e = _apply_symmetry(expected, perm, flips)
    c = _apply_symmetry(np.asarray(context, np.float32), perm, flips)
    f = np.float32(10 ** rng.uniform(*scale_range))
    e, c = e * f, c * f
    size = expected.shape[0]
    if rng.random() < p_dataset_mask and mask.any():
        m = np.ascontiguousarray(_apply_symmetry(mask, perm, flips))
        big = None  # the sets' slabs cross the window: continued by edge replication
    else:
        m, big = random_gap_mask(rng, size, region=2 * size)
    noisy = rng.poisson(np.maximum(e, 0).astype(np.float64)).astype(np.float32)
    return noisy, e.astype(np.float32), m, noisy_context(c, m, rng, big)


def noisy_context(context: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                  region_mask: np.ndarray | None = None) -> np.ndarray:
    """Context counts as measured: Poisson noise of a mean of 2³ counts, NaN on the blocks the gap
    touches (``region_mask``, or the window's ``mask`` continued by edge replication) and outside."""
    size = mask.shape[0]
    big = np.pad(np.asarray(mask, np.uint8), size // 2, mode="edge") if region_mask is None else region_mask
    blocked = big.reshape(size, 2, size, 2, size, 2).max(axis=(1, 3, 5)).astype(bool)
    bad = blocked | ~np.isfinite(context)
    counts = rng.poisson(np.maximum(np.where(bad, 0, context), 0).astype(np.float64) * 8) / 8
    return np.where(bad, np.nan, counts).astype(np.float32)


def linear_relative_weights(prefill: np.ndarray, target: np.ndarray, masks: np.ndarray,
                            power: float, floor: float = 0.25) -> np.ndarray:
    """Per-sample loss weights ``(L1 of the linear pre-fill in the gap)^-power``, batch mean 1.

    The loss is normalised per sample, so samples whose pre-fill is far off (wide gaps, faint
    patches: L1 a few times larger) dominate the gradient, and narrow gaps, where linear interpolation
    is already good and the network's correction must be small, weigh little. With ``power = 1`` each
    sample's loss counts relative to linear's error on it, which is the comparison the model is judged
    by. L1s below ``floor`` × the batch median are raised to it, so that a near-perfect pre-fill (a
    one-voxel gap in a flat region) cannot take over the batch.
    """
    m = np.asarray(masks).astype(bool)
    err = np.abs(np.asarray(prefill, np.float64) - np.asarray(target, np.float64)) * m
    n = m.reshape(len(m), -1).sum(axis=1)
    l1 = err.reshape(len(m), -1).sum(axis=1) / np.maximum(n, 1)
    l1 = np.maximum(l1, floor * np.median(l1) + 1e-6)
    w = l1 ** -float(power)
    return (w / w.mean()).astype(np.float32)


def make_batch(noisy: np.ndarray, truth: np.ndarray, masks: np.ndarray,
               linear_weight: float = 0.0, context: np.ndarray | None = None) -> Batch:
    """``(x, y)`` for :func:`napari_bcdi_dl.models.inpaint_loss.inpaint_loss` from count windows.

    With ``linear_weight > 0``, ``y`` gets a third channel: the per-sample weights of
    :func:`linear_relative_weights` with that power. With ``context`` (noisy block means, NaN where
    invalid), ``x`` is the pair ``[windows, context]`` of the context model.
    """
    x, lo, scale = encode_windows(noisy, masks)
    t = encode_target(truth, lo, scale)
    chans = [t, np.asarray(masks, np.float32)]
    if linear_weight > 0:
        w = linear_relative_weights(x[..., 0], t, masks, linear_weight)
        chans.append(np.broadcast_to(w[:, None, None, None], t.shape))
    y = np.stack(chans, axis=-1).astype(np.float32)
    if context is not None:
        return [x, encode_context(context, lo, scale)], y
    return x, y


def train_batches(data: dict[str, np.ndarray], batch: int, rng: np.random.Generator,
                  blur: float = 0.0, linear_weight: float = 0.0) -> Iterator[Batch]:
    """Endless augmented batches drawn lazily from ``rng`` (so a resumed run continues the stream).
    With a ``context`` array in ``data``, batches for the context model."""
    n = len(data["expected"])
    ctx = data.get("context")
    while True:
        idx = rng.integers(0, n, size=batch)
        samples = [augment(data["expected"][i], data["mask"][i], rng, blur=blur,
                           context=None if ctx is None else ctx[i]) for i in idx]
        arrays = [np.stack(s) for s in zip(*samples)]
        yield make_batch(*arrays[:3], linear_weight=linear_weight,
                         context=arrays[3] if ctx is not None else None)


def val_batches(data: dict[str, np.ndarray], batch: int) -> list[Batch]:
    """Held-out batches as generated (their noise and gap), target = noise-free expected.

    With a ``context`` array in ``data``: the context model's batches, the context's noise drawn from a
    fixed seed and the gap's blocks (the window's gap continued across the region by edge replication,
    the held-out gaps being the sets' centred or border-cut slabs) invalid.
    """
    out = []
    n = len(data["expected"])
    ctx = data.get("context")
    rng = np.random.default_rng(12345)
    for s in range(0, n, batch):
        sl = slice(s, s + batch)
        c = None if ctx is None else np.stack([noisy_context(a, m, rng) for a, m in
                                               zip(ctx[sl], data["mask"][sl])])
        out.append(make_batch(data["patches"][sl], data["expected"][sl], data["mask"][sl], context=c))
    return out


# --------------------------------------------------------------------------------------------- metrics
def gap_pcc_batch(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-window Pearson correlation of two ``(n, s, s, s)`` arrays over each window's gap voxels."""
    m = np.asarray(mask).astype(bool)
    out = np.full(len(a), np.nan)
    for i in range(len(a)):
        x, y = a[i][m[i]].astype(np.float64), b[i][m[i]].astype(np.float64)
        if x.size < 2:
            continue
        x, y = x - x.mean(), y - y.mean()
        den = np.sqrt((x * x).sum() * (y * y).sum())
        if den > 0:
            out[i] = float((x * y).sum() / den)
    return out


def make_val_metrics(loss_fn: Any):
    """``metrics_fn(model, val) -> {val_loss, val_pcc, val_pcc_linear, val_l1, val_l1_linear}`` in one pass.

    PCCs are per-window correlations inside the gap (normalised log scale = log(1 + I) up to an affine
    map, so the PCC of log(1 + I)), against the noise-free expected intensity, averaged over windows.
    """
    from ._keras import keras

    def metrics(model: Any, batches: Sequence[Batch]) -> dict:
        ops = keras().ops
        losses, pcc, pcc_lin, l1, l1_lin, n = [], [], [], [], [], 0
        for xs, y in batches:
            p = np.asarray(ops.convert_to_numpy(model.predict_on_batch(xs)))
            x = xs[0] if isinstance(xs, list) else xs
            losses.append(float(np.mean(ops.convert_to_numpy(loss_fn(y, p)))) * len(x))
            n += len(x)
            t, m = y[..., 0], y[..., 1]
            pcc.append(gap_pcc_batch(p[..., 0], t, m))
            pcc_lin.append(gap_pcc_batch(x[..., 0], t, m))
            mb = m.astype(bool)
            l1.append(np.abs(p[..., 0] - t)[mb].mean())
            l1_lin.append(np.abs(x[..., 0] - t)[mb].mean())
        return {"val_loss": float(np.sum(losses) / max(n, 1)),
                "val_pcc": float(np.nanmean(np.concatenate(pcc))),
                "val_pcc_linear": float(np.nanmean(np.concatenate(pcc_lin))),
                "val_l1": float(np.mean(l1)), "val_l1_linear": float(np.mean(l1_lin))}

    return metrics


# -------------------------------------------------------------------------------------------- training
def export_model(model: Any, path: os.PathLike | str, card: dict) -> Path:
    """Save ``model`` (``.keras``, atomically) and its card (``.json`` beside it)."""
    import json

    from .training import _write_json, save_model_atomic

    path = Path(path)
    save_model_atomic(model, path)
    _write_json(path.with_suffix(".json"), card)
    size_mb = path.stat().st_size / 2**20
    if size_mb > 25:
        raise BCDIError(f"exported model {path} is {size_mb:.1f} MB, over the 25 MB limit for shipped weights")
    json.dumps(card)
    return path


def beats_linear(record: dict) -> bool:
    """True when an epoch record beats the linear pre-fill on the held-out set: higher PCC and an L1
    error in the gap at least 1 % lower."""
    return (record.get("val_pcc", 0.0) > record.get("val_pcc_linear", 1.0)
            and record.get("val_l1", 1.0) < 0.99 * record.get("val_l1_linear", 0.0))


def _beats_exported(record: dict, export: os.PathLike | str) -> bool:
    """True unless ``export`` already holds a model scored on the same held-out set with a better PCC
    (another run must not replace a better shipped model)."""
    import json

    card_path = Path(export).with_suffix(".json")
    if not card_path.is_file():
        return True
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError):
        return True
    held = card.get("held_out") or {}
    same_set = abs(held.get("val_pcc_linear", -1.0) - record.get("val_pcc_linear", -2.0)) < 1e-9
    return not same_set or record.get("val_pcc", 0.0) > held.get("val_pcc", -1.0)


def export_run(run: os.PathLike | str, dest: os.PathLike | str) -> Path:
    """Export a run's ``best.keras`` with a card made of its ``run.json`` and best ``log.json`` record.

    For exporting by hand (e.g. from a run started without ``--export``); BCDIError when the best
    checkpoint does not beat linear interpolation on the held-out set.
    """
    import json
    import time

    from ._keras import keras

    run = Path(run)
    config = json.loads((run / "run.json").read_text())
    log = json.loads((run / "log.json").read_text())
    best = [r for r in log if r.get("best")]
    if not best or not (run / "best.keras").is_file():
        raise BCDIError(f"{run} has no best.keras yet: wait for the end of an epoch")
    record = best[-1]
    if not beats_linear(record):
        raise BCDIError(f"the best model of {run} (step {record['step']}) does not beat linear "
                        "interpolation on the held-out set yet; keep training")
    model = keras().saving.load_model(str(run / "best.keras"), compile=False)
    card = dict(config, step=record["step"], trained_s=record["elapsed_s"],
                held_out={k: record[k] for k in record if k.startswith("val_")},
                exported=time.strftime("%Y-%m-%d %H:%M:%S"))
    return export_model(model, dest, card)


def _card_arch(model_path: os.PathLike | str) -> dict | None:
    """The ``arch`` of the ``.json`` card beside a model file, if there is one."""
    import json

    card = Path(model_path).with_suffix(".json")
    try:
        return json.loads(card.read_text()).get("arch")
    except (OSError, ValueError):
        return None


def train_inpaint(
    data: Sequence[os.PathLike | str],
    val: Sequence[os.PathLike | str],
    out: os.PathLike | str,
    *,
    steps: int = 20000,
    batch: int = 8,
    steps_per_epoch: int = 250,
    lr: float = 1e-3,
    warmup: int = 100,
    patience: int | None = 12,
    checkpoint_every: int = 50,
    resume: bool = False,
    seed: int = 0,
    val_limit: int | None = None,
    train_limit: int | None = None,
    export: os.PathLike | str | None = None,
    arch: dict | None = None,
    init: os.PathLike | str | None = None,
    blur: float = 0.0,
    linear_weight: float = 0.0,
    bright_weight: float = 0.0,
    amplitude_weight: float = 0.0,
    context: bool = False,
    command: str | None = None,
    log=None,
    progress=None,
    cancel=None,
):
    """Train (or resume training) the inpainting model; see :mod:`napari_bcdi_dl.models.training`.

    With ``export``, the model is saved there (with a ``.json`` card) after every epoch that improves
    the held-out loss *and* beats the linear pre-fill's held-out PCC. ``init`` starts from the weights of
    a ``.keras`` file (e.g. the shipped model) instead of a fresh U-Net (``arch`` is then ignored);
    ``blur`` is the largest width (voxels) of the partial-coherence blur of :func:`augment`;
    ``linear_weight`` > 0 weights each training sample's loss by :func:`linear_relative_weights` with
    that power (held-out losses stay unweighted, so they compare across runs). ``bright_weight`` > 0 adds
    the brightness-weighted L1 (:func:`~napari_bcdi_dl.models.inpaint_loss.bright_l1`) to the loss, held-out
    loss included (compare runs by their held-out PCC and L1, which do not change); ``amplitude_weight``
    > 0 adds the amplitude error (:func:`~napari_bcdi_dl.models.inpaint_loss.amplitude_l2`) alike. ``context`` trains the
    context model (sets with ``context`` arrays; a model without context given as ``init`` gets one,
    :func:`~napari_bcdi_dl.models.inpaint.add_context`, and starts from its predictions).
    """
    import platform
    import time

    from ._keras import keras
    from .inpaint import DEFAULT_ARCH, add_context, build_inpainter, has_context
    from .inpaint_loss import make_inpaint_loss
    from .training import cosine_schedule, fit

    for name, v in (("blur", blur), ("linear-weight", linear_weight), ("bright-weight", bright_weight),
                    ("amplitude-weight", amplitude_weight)):
        if not (np.isfinite(v) and v >= 0):
            raise BCDIError(f"train inpaint: --{name} {v} must be finite and >= 0 (0 turns it off)")
    loss = make_inpaint_loss(bright_weight=bright_weight, amplitude_weight=amplitude_weight)
    k = keras()
    rng = np.random.default_rng(seed)
    k.utils.set_random_seed(seed)
    ckeys = ("context",) if context else ()
    train = load_patches(data, limit=train_limit, keys=("expected", "mask") + ckeys)
    held = load_patches(val, limit=val_limit, keys=("patches", "expected", "mask") + ckeys)
    vb = val_batches(held, max(batch, 16))
    if init is not None:
        if not Path(init).is_file():
            raise BCDIError(f"--init {init}: no such model file; give a .keras file (e.g. the shipped "
                            "src/napari_bcdi_dl/models/weights/inpaint_unet32.keras)")
        model = k.saving.load_model(str(init), compile=False)
        arch = _card_arch(init) or dict(DEFAULT_ARCH, **(arch or {}))
        arch.pop("context", None)
        if context and not has_context(model):
            model = add_context(model, arch)
        elif has_context(model) and not context:
            raise BCDIError(f"--init {init} is a context model; add --context (and sets with context)")
    else:
        arch = dict(DEFAULT_ARCH, **(arch or {}))
        arch.pop("context", None)
        model = build_inpainter(PATCH, context=context, **arch)
    if context:
        arch["context"] = True
    metrics = make_val_metrics(loss)
    config = {"command": command, "data": [str(d) for d in data], "val": [str(v) for v in val],
              "n_train": len(train["expected"]), "n_val": len(held["expected"]), "steps": steps,
              "batch": batch, "steps_per_epoch": steps_per_epoch, "lr": lr, "seed": seed,
              "arch": {k_: list(v) if isinstance(v, tuple) else v for k_, v in arch.items()},
              "params": int(model.count_params()), "init": None if init is None else str(init),
              "blur": blur, "linear_weight": linear_weight, "bright_weight": bright_weight,
              "amplitude_weight": amplitude_weight,
              "backend": k.backend.backend(),
              "keras": k.__version__, "host": f"{platform.machine()} {os.cpu_count()} cores"}

    def on_epoch(record: dict, model: Any) -> None:
        if export is None or not record.get("best"):
            return
        if not beats_linear(record) or not _beats_exported(record, export):
            return
        card = dict(config, step=record["step"], trained_s=record["elapsed_s"],
                    held_out={k_: record[k_] for k_ in record if k_.startswith("val_")},
                    exported=time.strftime("%Y-%m-%d %H:%M:%S"))
        export_model(model, export, card)
        (log or print)(f"exported to {export} (val_pcc {record['val_pcc']:.4f} > linear "
                       f"{record['val_pcc_linear']:.4f})")

    batches = train_batches(train, batch, rng, blur=blur, linear_weight=linear_weight)
    return fit(model, loss, batches, vb, out, steps,
               steps_per_epoch=steps_per_epoch, learning_rate=cosine_schedule(lr, steps, warmup),
               checkpoint_every=checkpoint_every, patience=patience, resume=resume, rng=rng,
               metrics_fn=metrics, on_epoch=on_epoch, config=config, log=log, progress=progress,
               cancel=cancel, jit_compile=False)
