"""Detector-gap inpainting: the patch U-Net, its input encoding, and full-volume inference.

Model
-----
A 3D U-Net (:func:`build_inpainter`) on 32³ windows, two input channels, channels last:

0. ``log(1 + I)`` min–max normalised to [0, 1] over the window's *non-gap* voxels, with the gap voxels
   pre-filled by a window-local linear interpolation across the gap (:func:`window_fill`);
1. the gap mask (1 = gap).

The *context model* (``build_inpainter(context=True)``, :func:`add_context`) takes a second input, a coarse
view of the window's surroundings: the 64³ region centred on the window, averaged over 2³ blocks
(``core.gaps.extract_context``; blocks touching the gap or the array border are invalid), encoded as
channels 0–1 are (:func:`encode_context`: the window's normalisation, invalid blocks pre-filled, their
mask). A gap seen through a 32³ window is a plane with no bearing on where the Bragg peak or the fringes
beyond the window lie; the context shows them (issue 21, item 2).

The output is the window in the same normalised scale; it is used only inside the gap. The network
predicts a *correction* to the linear fill: ``output = channel 0 + U-Net(x)``, with the last convolution
initialised to zero, so an untrained model is exactly linear interpolation and training only has to learn
what linear interpolation gets wrong (fringe shape, curvature, the centre of crosses). Because the mask
is an input, one model serves every gap width (1–12 px), lines, crosses of unequal widths, partial
planes and gaps cut by the window border.

Inference (:func:`inpaint`)
---------------------------
``core.gaps.window_origins`` places 32³ windows with the gap slab in the middle and slides them along
the gap with ``step``; windows are encoded, run through the model in batches, decoded to ``log(1 + I)``,
averaged where they overlap (``core.gaps.stitch_windows``), mapped back to counts and written *only*
inside the gap: every other voxel of the result is bit-identical to the input. Gap voxels no window
reaches are filled by linear interpolation, with a warning. ``method`` other than ``"dl"`` runs the
classical baselines of ``core.gap_fill.fill_baseline``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.errors import BCDIError
from ..core.progress import CancelToken, ProgressFn, check_cancel, report
from ._keras import keras

PATCH = 32
METHODS = ("dl", "linear", "cubic", "nearest", "idw")

#: Architecture of the shipped model (see docs/models.md for the throughput measurements behind it).
DEFAULT_ARCH = {
    "widths": (8, 16, 32, 64),
    "dilations": ((1, 2), (1, 2), (1, 2), (1, 1)),
    "decoder_convs": (1, 2, 2),
    "norm": "group",
}


# ----------------------------------------------------------------------------------------------- model
def build_inpainter(
    size: int = PATCH,
    *,
    widths: Sequence[int] = DEFAULT_ARCH["widths"],
    dilations: Sequence[Sequence[int]] | None = DEFAULT_ARCH["dilations"],
    decoder_convs: Sequence[int] | None = DEFAULT_ARCH["decoder_convs"],
    norm: str | None = DEFAULT_ARCH["norm"],
    residual_fill: bool = True,
    context: bool = False,
    name: str = "inpainter",
    **unet_kw: Any,
) -> Any:
    """Build the inpainting U-Net for ``size``³ windows with 2 input channels (see the module docstring).

    Parameters
    ----------
    size : window edge (divisible by ``2 ** (len(widths) - 1)``).
    widths, dilations, decoder_convs : U-Net layout, see :func:`napari_bcdi_dl.models.blocks.unet`.
        Full-resolution layers dominate the cost on a CPU: keep ``widths[0]`` small.
    norm : ``"group"`` (GroupNormalization after each convolution: 2–3× faster optimisation than none
        in a 60-step overfit test, and independent of the batch, unlike ``"batch"``), ``"batch"`` or None.
    residual_fill : output = input channel 0 + U-Net output (zero-initialised), i.e. a correction of the
        linear pre-fill. With False the U-Net output is the prediction itself.
    context : a second input, the coarse view of the surroundings (see the module docstring).
    name : model name.
    unet_kw : passed to :func:`~napari_bcdi_dl.models.blocks.unet` (``pool``, ``up``, ``residual``...).

    Returns
    -------
    keras.Model
        Built from Keras's own layers only: ``keras.saving.load_model`` reads it back on any backend.
    """
    from .blocks import unet

    k = keras()
    shape = (size, size, size, 2)
    body = unet(shape, 1, widths=widths, dilations=dilations, decoder_convs=decoder_convs, norm=norm,
                out_kernel_initializer="zeros" if residual_fill else "glorot_uniform",
                context_shape=shape if context else None, name=f"{name}_unet", **unet_kw)
    if not residual_fill:
        return body
    inp = k.Input(shape=shape, name="window")
    if context:
        ctx = k.Input(shape=shape, name="context")
        delta = body([inp, ctx])
    else:
        delta = body(inp)
    pick = k.layers.Conv3D(1, 1, use_bias=False, trainable=False, name="prefill")
    base = pick(inp)
    pick.set_weights([np.array([1.0, 0.0], dtype="float32").reshape(1, 1, 1, 2, 1)])
    out = k.layers.Add(name="prediction")([base, delta])
    return k.Model([inp, ctx] if context else inp, out, name=name)


def has_context(model: Any) -> bool:
    """True for a model with the context input (two inputs)."""
    return isinstance(model.input_shape, list) and len(model.input_shape) == 2


def window_size(model: Any) -> int:
    """Edge of the windows ``model`` takes."""
    shape = model.input_shape[0] if has_context(model) else model.input_shape
    return int(shape[1])


def add_context(model: Any, arch: dict | None = None) -> Any:
    """A context model that computes exactly what ``model`` (a model without context) computes.

    Built with ``arch`` (default :data:`DEFAULT_ARCH`) and ``context=True``; every layer of ``model`` is
    copied into the layer of the same name, and the context enters through convolutions at zero, so
    training starts from ``model``'s predictions and can only add to them.
    """
    if has_context(model):
        raise BCDIError("add_context: the model already has a context input")
    new = build_inpainter(window_size(model), context=True, **dict(DEFAULT_ARCH, **(arch or {})))
    old_layers = {layer.name: layer for layer in _all_layers(model)}
    copied = 0
    for layer in _all_layers(new):
        src = old_layers.get(layer.name)
        if src is not None and src.weights:
            layer.set_weights(src.get_weights())
            copied += 1
    if copied < len([ly for ly in _all_layers(model) if ly.weights]):
        raise BCDIError("add_context: the model's layers do not match the architecture; give its card's arch")
    return new


def _all_layers(model: Any) -> list:
    out = []
    for layer in model.layers:
        out.extend(_all_layers(layer) if hasattr(layer, "layers") else [layer])
    return out


# -------------------------------------------------------------------------------------------- encoding
def window_fill(values: np.ndarray, masks: np.ndarray, max_passes: int = 4) -> np.ndarray:
    """Fill the gap voxels of a batch of windows by linear interpolation across the gap, window-locally.

    The rule of ``core.gap_fill.fill_baseline(..., "linear")``, vectorised over a batch of small windows (the
    per-window call costs ~50 ms, too much for ~1,000 windows): along each axis, a gap voxel bracketed
    by valid voxels gets the linear interpolation between them; the axes are averaged with weights
    1/span², so a slab is interpolated along its normal. Voxels with no bracketing pair (the centre of
    a cross) are filled in a second pass from the first; voxels valid on one side only (gap cut by the
    window border) take the nearest value along the axis (weight 1/distance²); anything left takes the
    window's mean valid value.

    Parameters
    ----------
    values : ``(n, s, s, s)`` float array (gap voxels ignored).
    masks : ``(n, s, s, s)`` gap masks (nonzero = gap).

    Returns
    -------
    np.ndarray
        New float32 array, valid voxels unchanged.
    """
    v = np.asarray(values, dtype=np.float32)
    m = np.asarray(masks).astype(bool)
    if v.shape != m.shape or v.ndim != 4:
        raise BCDIError(f"window fill: values {v.shape} and masks {m.shape} must be the same (n, s, s, s)")
    out = np.where(m, np.float32(0), v)
    if not m.any():
        return out
    flat = out.reshape(-1)
    valid = ~m
    todo = m.copy()
    for _ in range(max_passes):
        if not todo.any():
            break
        idx, val = _directional(out, valid, todo, one_sided=False)
        if idx.size == 0:
            idx, val = _directional(out, valid, todo, one_sided=True)
            if idx.size == 0:
                break
        flat[idx] = val
        valid.reshape(-1)[idx] = True
        todo.reshape(-1)[idx] = False
    if todo.any():
        orig_valid = ~m
        cnt = orig_valid.sum(axis=(1, 2, 3))
        mean = np.where(cnt > 0, (out * orig_valid).sum(axis=(1, 2, 3)) / np.maximum(cnt, 1), 0)
        out = np.where(todo, mean[:, None, None, None].astype(np.float32), out)
    return out


_ORDER_CACHE: dict = {}


def _moved_flat_index(shape: tuple, ax: int) -> np.ndarray:
    """Flat indices of an array of ``shape`` listed in the order of ``moveaxis(a, ax, -1)``."""
    key = (shape, ax)
    if key not in _ORDER_CACHE:
        if len(_ORDER_CACHE) > 16:
            _ORDER_CACHE.clear()
        _ORDER_CACHE[key] = np.ascontiguousarray(
            np.moveaxis(np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape), ax, -1)).reshape(-1)
    return _ORDER_CACHE[key]


def _directional(v: np.ndarray, valid: np.ndarray, todo: np.ndarray,
                 one_sided: bool) -> tuple[np.ndarray, np.ndarray]:
    """One pass of axis-wise interpolation at the ``todo`` voxels; returns their flat indices and values."""
    num = np.zeros(v.size, np.float32)
    den = np.zeros(v.size, np.float32)
    for ax in range(1, v.ndim):
        n = v.shape[ax]
        vv = np.ascontiguousarray(np.moveaxis(v, ax, -1)).reshape(-1, n)
        va = np.ascontiguousarray(np.moveaxis(valid, ax, -1)).reshape(-1, n)
        td = np.ascontiguousarray(np.moveaxis(todo, ax, -1)).reshape(-1, n)
        lines = np.flatnonzero(td.any(axis=1) & va.any(axis=1))
        if lines.size == 0:
            continue
        va, vv, td = va[lines], vv[lines], td[lines]
        it = np.int8 if n < 127 else np.int32
        pos = np.arange(n, dtype=it)
        prev = np.maximum.accumulate(np.where(va, pos, it(-1)), axis=1)
        nxt = np.minimum.accumulate(np.where(va, pos, it(n))[:, ::-1], axis=1)[:, ::-1]
        r, c = np.nonzero(td)
        p = prev[r, c].astype(np.int32)
        q = nxt[r, c].astype(np.int32)
        has_p, has_n = p >= 0, q < n
        if one_sided:
            sel = has_p ^ has_n
            near = np.where(has_p, p, q)[sel]
            est = vv[r[sel], near]
            w = 1.0 / np.maximum(np.abs(c[sel] - near), 1).astype(np.float32) ** 2
        else:
            sel = has_p & has_n
            ps, qs = p[sel], q[sel]
            span = (qs - ps).astype(np.float32)
            t = (c[sel] - ps) / span
            a, b = vv[r[sel], ps], vv[r[sel], qs]
            est = a + t * (b - a)
            w = 1.0 / span**2
        if not sel.any():
            continue
        dest = _moved_flat_index(v.shape, ax).reshape(-1, n)[lines][r[sel], c[sel]]
        num[dest] += w * est
        den[dest] += w
    done = np.flatnonzero(den > 0)
    return done, num[done] / den[done]


def encode_windows(windows: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model input of a batch of count windows.

    Parameters
    ----------
    windows : ``(n, s, s, s)`` intensities (counts; negative values count as 0; gap values ignored).
    masks : ``(n, s, s, s)`` gap masks.

    Returns
    -------
    (x, lo, scale)
        ``x`` float32 ``(n, s, s, s, 2)``; ``lo`` and ``scale`` ``(n,)`` float32 such that
        ``log(1 + I) = lo + scale · normalised``.
    """
    w = np.asarray(windows, dtype=np.float32)
    m = np.asarray(masks).astype(bool)
    lg = np.log1p(np.maximum(w, 0))
    big = np.float32(np.finfo(np.float32).max)
    lo = np.where(m, big, lg).min(axis=(1, 2, 3))
    hi = np.where(m, -big, lg).max(axis=(1, 2, 3))
    none = ~(~m).any(axis=(1, 2, 3))
    lo = np.where(none, 0, lo).astype(np.float32)
    hi = np.where(none, 1, hi).astype(np.float32)
    scale = np.where(hi - lo > 1e-6, hi - lo, 1).astype(np.float32)
    norm = (lg - lo[:, None, None, None]) / scale[:, None, None, None]
    x = np.stack([window_fill(norm, m), m.astype(np.float32)], axis=-1)
    return x, lo, scale


def encode_context(context: np.ndarray, lo: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Context input of a batch: ``(n, s, s, s)`` block-mean counts (NaN = invalid) in the windows' scale.

    Channel 0: ``log(1 + I)`` normalised with each window's ``lo`` and ``scale`` (from
    :func:`encode_windows`), invalid blocks pre-filled by :func:`window_fill`; channel 1: 1 where invalid.
    """
    c = np.asarray(context, dtype=np.float32)
    bad = ~np.isfinite(c)
    lg = np.log1p(np.maximum(np.where(bad, 0, c), 0))
    norm = (lg - lo[:, None, None, None]) / scale[:, None, None, None]
    return np.stack([window_fill(norm, bad), bad.astype(np.float32)], axis=-1)


def decode_windows(y: np.ndarray, lo: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Model output ``(n, s, s, s[, 1])`` back to ``log(1 + I)`` (clipped at 0)."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 5:
        y = y[..., 0]
    return np.maximum(y * scale[:, None, None, None] + lo[:, None, None, None], 0)


def encode_target(target: np.ndarray, lo: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """A truth window in counts (e.g. the noise-free ``expected``) in the model's normalised scale."""
    lg = np.log1p(np.maximum(np.asarray(target, dtype=np.float32), 0))
    return (lg - lo[:, None, None, None]) / scale[:, None, None, None]


# ------------------------------------------------------------------------------------------- inference
def _check_inputs(data: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from ..core.masks import validate_mask

    d = np.asarray(data)
    if d.ndim != 3:
        raise BCDIError(f"inpaint: data has {d.ndim} dimensions {d.shape}; give a 3D (z, y, x) intensity")
    if np.iscomplexobj(d) or not np.issubdtype(d.dtype, np.number):
        raise BCDIError(f"inpaint: data of dtype {d.dtype}; give a real intensity (counts)")
    m = validate_mask(mask, d.shape, where="gap mask").astype(bool)
    if not m.any():
        raise BCDIError("inpaint: the gap mask is empty, there is nothing to inpaint; "
                        "paint or import a gap mask first")
    if m.all():
        raise BCDIError("inpaint: the gap mask covers every voxel, nothing is left to inpaint from; "
                        "check the mask (1 = gap)")
    if np.issubdtype(d.dtype, np.floating) and not np.isfinite(d[~m]).all():
        raise BCDIError("inpaint: the data have NaN or Inf outside the gap mask; mask them too")
    return d, m


def _predict(model: Any, x: np.ndarray | list, batch: int) -> np.ndarray:
    xs = x if isinstance(x, list) else [x]
    n = len(xs[0])
    if n < batch:  # one compiled shape: pad the last batch instead of retracing
        xs = [np.concatenate([a, np.zeros((batch - n,) + a.shape[1:], a.dtype)]) for a in xs]
    y = model.predict_on_batch(xs if len(xs) > 1 else xs[0])
    return np.asarray(keras().ops.convert_to_numpy(y))[:n]


def inpaint(
    data: np.ndarray,
    mask: np.ndarray,
    method: str = "dl",
    step: int = 4,
    batch: int = 32,
    model: Any = None,
    *,
    fallback: str = "linear",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Fill the detector gaps of a 3D intensity.

    Parameters
    ----------
    data : 3D ``(z, y, x)`` intensity in counts. Never modified.
    mask : gap mask of the same shape (1 = gap); a 2D detector mask is repeated over the frames.
    method : ``"dl"`` (the U-Net) or a baseline ``"linear" | "cubic" | "nearest" | "idw"``
        (``core.gap_fill.fill_baseline``, in ``log(1 + I)``).
    step : stride of the windows along the gap (``dl``); 1 is the published setting, 4 is ~64× cheaper.
    batch : windows per model call.
    model : a Keras model (e.g. fine-tuned, :mod:`~napari_bcdi_dl.models.finetune`); default the shipped
        ``"inpaint"`` model from :func:`napari_bcdi_dl.models.registry.load_model`.
    fallback : baseline for gap voxels no window reaches (arrays thinner than 32 along an axis).
    progress, cancel : windows done / total; cancel raises ``Cancelled``.

    Returns
    -------
    np.ndarray
        New array, float32 for integer or float32 input (float64 input stays float64), same shape;
        identical to ``data`` bit for bit outside the gap.

    Raises
    ------
    BCDIError
        Data not 3D or not real, mask of another shape or not 0/1, empty mask, mask covering everything,
        unknown method or step < 1.
    """
    meth = str(method).strip().lower()
    if meth not in METHODS:
        raise BCDIError(f"inpaint: unknown method {method!r}; choose one of {' | '.join(METHODS)}")
    if int(step) < 1:
        raise BCDIError(f"inpaint: step {step} must be at least 1")
    if int(batch) < 1:
        raise BCDIError(f"inpaint: batch {batch} must be at least 1")
    d, m = _check_inputs(data, mask)
    if meth != "dl":
        return _as_output(d, _baseline(d, m, meth, progress, cancel))

    from ..core.gaps import extract_context, extract_windows, stitch_windows, window_origins

    if model is None:
        from .registry import load_model

        model = load_model("inpaint")
    size = window_size(model)
    context = has_context(model)
    out = _as_output(d, d)
    origins = window_origins(m, size, int(step))
    n = len(origins)
    report(progress, cancel, 0, max(n, 1))
    total = np.zeros(d.shape, np.float64)
    count = np.zeros(d.shape, np.int32)
    for s in range(0, n, batch):
        o = origins[s:s + batch]
        wm = extract_windows(m, o, size)
        x, lo, scale = encode_windows(extract_windows(d, o, size), wm)
        if context:
            x = [x, encode_context(extract_context(d, o, size, invalid=m), lo, scale)]
        check_cancel(cancel)
        logv = decode_windows(_predict(model, x, batch), lo, scale)
        t, c = stitch_windows(logv, o, d.shape, m)
        total += t
        count += c
        report(progress, cancel, min(s + batch, n), n)
    sel = m & (count > 0)
    out[sel] = np.expm1(total[sel] / count[sel]).astype(out.dtype)
    left = m & ~sel
    if left.any():
        warnings.warn(
            f"inpaint: {int(left.sum())} gap voxels are out of reach of any {size}³ window (array "
            f"{d.shape}); they were filled by {fallback} interpolation", stacklevel=2)
        filled = _baseline(out, left, fallback, None, cancel)
        out[left] = filled[left].astype(out.dtype)
    return out


def _as_output(d: np.ndarray, values: np.ndarray) -> np.ndarray:
    dtype = d.dtype if d.dtype in (np.float32, np.float64) else np.float32
    return np.array(values, dtype=dtype, copy=True)


def _baseline(d, m, method, progress, cancel) -> np.ndarray:
    from ..core.gap_fill import fill_baseline

    return fill_baseline(d, m, method, progress=progress, cancel=cancel)
