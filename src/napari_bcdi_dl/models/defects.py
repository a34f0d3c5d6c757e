"""The defect classifier: a small 3D CNN from a Bragg peak to {none, edge, screw, mixed} dislocations.

After Lim, Bellec et al. (npj Comput. Mater. 7, 115, 2021): a 3D CNN on simulated patterns tells a
defect-free crystal from one crossed by a dislocation, and the dislocation's character, before any
phasing. Input: the pattern centred on its centre of mass and cropped/padded to the model grid (64³) as the
DL phase pipeline does (:func:`core.reciprocal.to_model_grid`, no zoom), then ``log(1 + I)`` normalised to
[0, 1] (:func:`core.reciprocal.log_normalise`). Network: strided 3D convolutions (64³ → 4³), each level a
stride-2 convolution and a 3×3×3 convolution with group normalisation, then global average and max pooling
and a small dense head with a softmax over :data:`LABELS`. Small on purpose: inference ≤ 0.5 s per pattern
on a 2-core CPU (docs/defects.md).

``"mixed"`` means one mixed (60°) dislocation *or* two dislocations (see
:mod:`core.simulate.dislocations`).

Two shipped models. ``"defects"`` was trained with the Bragg vector G in any direction: it detects a
dislocation but cannot tell edge from screw (the pattern carries no trace of G's direction, and the line's
angle to G is what separates them; docs/defects.md). ``"defects_gz"`` was trained with G along array axis 0
of its input: when the user knows along which array axis G lies (``g_axis`` = ``"z"``, ``"y"`` or ``"x"``),
the pattern is transposed so that this axis becomes axis 0 (:func:`orient_to_g`) and that model tells edge
from screw too. ``g_axis=None`` (G unknown) uses the G-random model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.errors import BCDIError
from ..core.progress import report

LABELS = ("none", "edge", "screw", "mixed")
GRID = 64
#: Array axes along which G may lie (``g_axis``); the G-aware model wants G along axis 0.
G_AXES = ("z", "y", "x")
#: The shipped model for an unknown G direction and the one for G along axis 0 of its input.
MODEL_G_RANDOM = "defects"
MODEL_G_AXIS = "defects_gz"


def check_g_axis(g_axis, where: str = "classify") -> str | None:
    """``g_axis`` normalised: None (G unknown) or one of :data:`G_AXES`; a one-line BCDIError otherwise."""
    if g_axis is None:
        return None
    g = str(g_axis).strip().lower()
    if g in ("", "none", "unknown", "random"):
        return None
    if g not in G_AXES:
        raise BCDIError(f"{where}: G axis {g_axis!r} unknown: give z, y or x (the array axis along which "
                        "the Bragg vector G lies), or leave it out when G's direction is not known")
    return g


def model_for(g_axis) -> str:
    """The shipped model name for a G axis (None: the G-random model; z/y/x: the G-aware one)."""
    return MODEL_G_RANDOM if check_g_axis(g_axis) is None else MODEL_G_AXIS


def orient_to_g(a: np.ndarray | None, g_axis) -> np.ndarray | None:
    """``a`` (a pattern or its mask) with the array axis ``g_axis`` moved to axis 0 (swapped with it; a
    view), so that G lies along axis 0 as the G-aware model wants; unchanged for None and ``"z"``."""
    g = check_g_axis(g_axis)
    if a is None or g is None or g == "z":
        return a
    return np.swapaxes(np.asarray(a), 0, G_AXES.index(g))


def build_defect_net(size: int = GRID, widths: Sequence[int] = (8, 16, 32, 64), *, dense: int = 64,
                     dropout: float = 0.3, groups: int = 4, name: str = "defect_cnn"):
    """The classifier (uncompiled Keras model): (n, size, size, size, 1) in [0, 1] -> (n, 4) probabilities.

    Parameters
    ----------
    size : cubic input grid (a multiple of ``2 ** len(widths)``).
    widths : channels of the levels; level ``l`` works at ``size / 2**(l+1)``.
    dense : width of the hidden dense layer.
    dropout : dropout before the output layer (training only).
    groups : groups of the group normalisation after each convolution. Per-pattern normalisation, the same
        in training and inference: with batch normalisation (tried first) the held-out predictions with the
        moving statistics were far worse than with the batch's own (loss 1.44 vs 1.06 at step 600, momentum
        0.9; the patterns' statistics differ too much from one to the next).
    """
    from ._keras import keras

    k = keras()
    if size % (2 ** len(widths)):
        raise BCDIError(f"defect net: size {size} is not a multiple of {2 ** len(widths)}")
    inp = k.Input(shape=(size, size, size, 1), name="log_intensity")
    x = inp
    for level, w in enumerate(widths):
        x = k.layers.Conv3D(w, 4 if level == 0 else 3, strides=2, padding="same", use_bias=False,
                            kernel_initializer="he_normal", name=f"down{level}")(x)
        x = k.layers.GroupNormalization(groups=min(groups, w), name=f"down{level}_gn")(x)
        x = k.layers.Activation("relu", name=f"down{level}_act")(x)
        x = k.layers.Conv3D(w, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                            name=f"conv{level}")(x)
        x = k.layers.GroupNormalization(groups=min(groups, w), name=f"conv{level}_gn")(x)
        x = k.layers.Activation("relu", name=f"conv{level}_act")(x)
    x = k.layers.Concatenate(name="pool")([k.layers.GlobalAveragePooling3D(name="avg")(x),
                                           k.layers.GlobalMaxPooling3D(name="max")(x)])
    x = k.layers.Dense(dense, activation="relu", name="hidden")(x)
    if dropout > 0:
        x = k.layers.Dropout(dropout, name="dropout")(x)
    out = k.layers.Dense(len(LABELS), activation="softmax", name="probabilities")(x)
    return k.Model(inp, out, name=name)


def model_grid(model) -> int:
    """The cubic input size of a defect model."""
    shape = tuple(model.input_shape)
    if len(shape) != 5 or shape[1] is None or not (shape[1] == shape[2] == shape[3]):
        raise BCDIError(f"defect model: input shape {shape} is not (n, S, S, S, 1); load a defect model")
    return int(shape[1])


def check_pattern(intensity, where: str = "classify") -> np.ndarray:
    """The pattern as a finite, non-negative 3D float array, or a one-line BCDIError."""
    a = np.asarray(intensity)
    if a.ndim != 3:
        raise BCDIError(f"{where}: the pattern has {a.ndim} dimension{'s' if a.ndim != 1 else ''} "
                        f"{tuple(a.shape)}; give a 3D (z, y, x) diffraction pattern")
    if np.iscomplexobj(a) or not np.issubdtype(a.dtype, np.number):
        raise BCDIError(f"{where}: the pattern has dtype {a.dtype}; give real photon counts, not an object")
    if min(a.shape) < 8:
        raise BCDIError(f"{where}: the pattern {tuple(a.shape)} is too small; give at least 8 voxels per axis")
    bad = int(np.count_nonzero(~np.isfinite(a)))
    if bad:
        raise BCDIError(f"{where}: the pattern holds {bad} NaN or infinite value{'s' if bad > 1 else ''}; "
                        "mask or clean them first (bcdi-dl prepare)")
    if not np.any(a > 0):
        raise BCDIError(f"{where}: the pattern has no positive counts")
    return a


def preprocess(intensity: np.ndarray, size: int = GRID, mask: np.ndarray | None = None) -> np.ndarray:
    """Network input of one pattern: centred on its centre of mass, cropped/padded to ``size``³ (no zoom:
    a non-cubic or larger pattern is cropped around the peak, a smaller one zero-padded), log-normalised.

    Masked voxels (1 = invalid) are 0, as in the DL phase pipeline.
    """
    from ..core.reciprocal import log_normalise, mask_to_model_grid, to_model_grid

    a = check_pattern(intensity)
    i_m, t = to_model_grid(a, size, mask=mask)
    m_m = mask_to_model_grid(mask, t) if mask is not None else None
    return log_normalise(i_m, m_m)


def predict_probabilities(model, x: np.ndarray, *, batch_size: int = 8, progress=None,
                          cancel=None) -> np.ndarray:
    """Class probabilities (n, 4) of preprocessed inputs ``x`` ((S, S, S) or (n, S, S, S) in [0, 1])."""
    x = np.asarray(x, dtype=np.float32)
    single = x.ndim == 3
    if single:
        x = x[None]
    s = model_grid(model)
    if x.ndim != 4 or x.shape[1:] != (s,) * 3:
        raise BCDIError(f"defect model: input {x.shape} does not match the model grid {s}³; use preprocess()")
    out = np.empty((len(x), len(LABELS)), np.float32)
    report(progress, cancel, 0, len(x))
    for i in range(0, len(x), batch_size):
        out[i:i + batch_size] = np.asarray(model(x[i:i + batch_size, ..., None], training=False))
        report(progress, cancel, min(len(x), i + batch_size), len(x))
    return out[0] if single else out


def classify(intensity: np.ndarray, mask: np.ndarray | None = None, *, model=None,
             g_axis: str | None = None) -> dict[str, float]:
    """Probabilities ``{"none", "edge", "screw", "mixed"}`` (summing to 1) of one 3D pattern.

    ``g_axis``: the array axis (``"z"``, ``"y"``, ``"x"``) along which G lies, or None when it is not known.
    With an axis the pattern (and mask) is transposed so that this axis is axis 0 before preprocessing.
    ``model``: a defect model (default: the shipped model for ``g_axis``, :func:`model_for`, loaded offline).
    """
    g = check_g_axis(g_axis)
    if model is None:
        from .registry import load_model

        model = load_model(model_for(g))
    x = preprocess(orient_to_g(intensity, g), model_grid(model), orient_to_g(mask, g))
    p = predict_probabilities(model, x).astype(np.float64)
    p = p / p.sum()
    return {k: float(v) for k, v in zip(LABELS, p)}


def classify_job(intensity: np.ndarray, mask: np.ndarray | None = None, *, model: str | None = None,
                 g_axis: str | None = None, progress=None, cancel=None) -> dict:
    """Job of the *Defects* dock, run in the widgets' model process: ``{"probabilities": {...}, "label",
    "seconds", "model_grid", "shape", "model", "g_axis"}`` of one pattern (the shipped model for
    ``g_axis`` unless ``model`` names another, loaded once per process)."""
    import time

    from .registry import load_model

    report(progress, cancel, 0, 2)
    g = check_g_axis(g_axis, "Defects")
    a = check_pattern(intensity, "Defects")
    name = model or model_for(g)
    m = load_model(name)
    report(progress, cancel, 1, 2)
    t0 = time.perf_counter()
    probs = classify(a, mask, model=m, g_axis=g)
    seconds = time.perf_counter() - t0
    report(progress, cancel, 2, 2)
    return {"probabilities": probs, "label": max(probs, key=probs.get), "seconds": seconds,
            "model_grid": model_grid(m), "shape": [int(n) for n in a.shape], "model": name, "g_axis": g}
