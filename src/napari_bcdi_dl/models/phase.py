"""The reciprocal-space phase network: 3D U-Net from normalised log-intensity to the phase of the field.

Structure after Masto, Bellec et al. (npj Comput. Mater. 2026): the first encoder blocks are chains of
dilated 3×3×3 convolutions (a wide receptive field where the fringes are), every skip connection goes
through its own convolution block before the decoder concatenates it, the decoder upsamples with
transposed convolutions, and the last layer is a 1×1×1 convolution with **no activation**: the phase is
unbounded and the WCA loss (:mod:`.wca`) ignores 2π wraps, global offset and the twin sign.

The paper's network has 143.8 M parameters at 64³; here widths, depth and grid are arguments so that
the shipped model can be what CPU training affords (see ``docs/models.md``). Cost is dominated by the
full-resolution layers, so the width grows by ``growth`` per level from a thin ``base``.

:func:`predict_phase` runs a model on one normalised log-intensity array of the model's grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.errors import BCDIError
from ..core.progress import report


def level_widths(base: int, depth: int, growth: float = 2.0, max_width: int = 256) -> list[int]:
    """Channel widths of the encoder levels 0..depth (the last one is the bottleneck)."""
    return [int(min(max_width, round(base * growth ** level))) for level in range(depth + 1)]


def build_phase_net(size: int = 32, base: int = 8, *, depth: int = 3, growth: float = 2.5,
                    max_width: int = 256, widths: Sequence[int] | None = None,
                    dilations: Sequence[int] = (1, 2, 3), n_dilated: int = 2, convs_per_block: int = 2,
                    full_res_decoder_convs: int = 1, skip_convs: int = 1, bottleneck_convs: int = 3,
                    norm: str | None = "batch", activation: str = "leaky_relu", dropout: float = 0.0,
                    stem: str = "none", head_width: int = 8, corrector: bool = False, name: str | None = None):
    """Build the phase U-Net (uncompiled Keras model) from the shared parts of :mod:`.blocks`.

    Parameters
    ----------
    size : cubic input grid (32 or 64; any multiple of ``2**depth`` works).
    base : channel width of the full-resolution level.
    depth : number of down-samplings (the bottleneck is ``size / 2**depth`` wide).
    growth, max_width : width of level ``l`` is ``min(max_width, base * growth**l)``.
    widths : explicit widths, one per level plus the bottleneck (overrides ``base``/``growth``).
    dilations : dilation rates of the chained convolutions of the first ``n_dilated`` encoder blocks.
    convs_per_block : 3×3×3 convolutions of the other encoder blocks and of the decoder blocks.
    full_res_decoder_convs : convolutions of the full-resolution decoder block (the costly level).
    skip_convs : convolutions on each skip connection before it is concatenated (0 = plain skip).
    bottleneck_convs : convolutions at the bottleneck.
    norm : ``"batch"``, ``"group"`` or None.
    activation : Keras activation name.
    dropout : spatial dropout rate at the bottleneck.
    stem : ``"none"`` (the U-Net works at the input resolution) or ``"patch"``: a 2×2×2 stride-2
        convolution folds each 2³ cell into channels, the U-Net (its dilated first blocks included) runs
        at half resolution, a stride-2 transposed convolution unfolds it, and a thin full-resolution head
        (``head_width`` channels, with the input concatenated) gives the phase. About 4–8× cheaper.
    head_width : channels of the full-resolution head of the ``"patch"`` stem.
    corrector : the phase corrector of :mod:`.phase_corrector`: four input channels (log-intensity, cos, sin
        and the value of a phase estimate) and the output is the estimate plus a learnt correction (the last
        convolution, ``phase_delta``, starts at zero; a fixed 1×1×1 convolution, ``estimate``, picks the
        fourth channel).

    Returns
    -------
    keras.Model mapping (n, size, size, size, 1 or 4) float32 to (n, size, size, size, 1) phase.
    """
    from ._keras import keras
    from .blocks import conv_block, down_block, up_block

    k = keras()
    if stem not in ("none", "patch"):
        raise BCDIError(f"phase net: stem {stem!r} unknown; use 'none' or 'patch'")
    factor = 2 ** (depth + (stem == "patch"))
    if size % factor:
        raise BCDIError(f"phase net: size {size} is not a multiple of {factor}; "
                        "choose size 32 or 64 or a smaller depth")
    w = list(widths) if widths is not None else level_widths(base, depth, growth, max_width)
    if len(w) != depth + 1:
        raise BCDIError(f"phase net: {len(w)} widths given, {depth + 1} needed (one per level + bottleneck)")
    kw = dict(norm=norm, activation=activation)
    inp = k.Input(shape=(size, size, size, 4 if corrector else 1),
                  name="log_intensity_cos_sin_phase" if corrector else "log_intensity")
    x = inp
    if stem == "patch":
        x = k.layers.Conv3D(w[0], 2, strides=2, padding="same", activation=activation,
                            kernel_initializer="he_normal", name="stem")(x)
    skips = []
    for level in range(depth):
        rates = tuple(dilations) if level < n_dilated else (1,) * convs_per_block
        skip, x = down_block(x, w[level], dilation_rates=rates, name=f"enc{level}", **kw)
        if skip_convs:
            skip = conv_block(skip, w[level], dilation_rates=(1,) * skip_convs, name=f"skip{level}", **kw)
        skips.append(skip)
    x = conv_block(x, w[depth], dilation_rates=(1,) * bottleneck_convs, name="bottleneck", **kw)
    if dropout > 0:
        x = k.layers.SpatialDropout3D(dropout, name="bottleneck_dropout")(x)
    for level in reversed(range(depth)):
        n_conv = full_res_decoder_convs if level == 0 else convs_per_block
        x = up_block(x, skips[level], w[level], dilation_rates=(1,) * n_conv, name=f"dec{level}", **kw)
    if stem == "patch":
        x = k.layers.Conv3DTranspose(head_width, 2, strides=2, padding="same", activation=activation,
                                     kernel_initializer="he_normal", name="unstem")(x)
        x = k.layers.Concatenate(name="head_cat")([x, inp])
        x = conv_block(x, head_width, dilation_rates=(1,), name="head", **kw)
    if not corrector:
        out = k.layers.Conv3D(1, 1, padding="same", name="phase")(x)  # no activation: unbounded phase
        return k.Model(inp, out, name=name or f"phase_net_{size}")
    delta = k.layers.Conv3D(1, 1, padding="same", kernel_initializer="zeros", name="phase_delta")(x)
    estimate = k.layers.Conv3D(1, 1, use_bias=False, trainable=False, name="estimate")(inp)
    out = k.layers.Add(name="phase")([estimate, delta])
    model = k.Model(inp, out, name=name or f"phase_corrector_{size}")
    pick = np.zeros((1, 1, 1, 4, 1), np.float32)
    pick[..., 3, 0] = 1.0
    model.get_layer("estimate").set_weights([pick])
    return model


def model_grid_size(model) -> int:
    """The cubic input size a phase model was built for."""
    shape = tuple(model.input_shape)
    if len(shape) != 5 or not (shape[1] == shape[2] == shape[3]) or shape[1] is None:
        raise BCDIError(f"phase model: input shape {shape} is not (n, S, S, S, channels); load a phase model")
    return int(shape[1])


def predict_phase(model, log_intensity: np.ndarray, *, batch_size: int = 4, progress=None,
                  cancel=None) -> np.ndarray:
    """Predict the reciprocal-space phase of one (S, S, S) or a batch (n, S, S, S) of normalised inputs.

    Parameters
    ----------
    model : a phase model (see :func:`build_phase_net`, :func:`..registry` for shipped ones).
    log_intensity : float array in [0, 1] (``core.reciprocal.log_normalise`` of the intensity) on the
        model grid.

    Returns
    -------
    float32 phase, same shape as ``log_intensity`` (unbounded; wrap with ``np.angle(np.exp(1j*phi))``).
    """
    x = np.asarray(log_intensity, dtype=np.float32)
    single = x.ndim == 3
    if single:
        x = x[None]
    size = model_grid_size(model)
    if x.ndim != 4 or x.shape[1:] != (size,) * 3:
        raise BCDIError(f"predict_phase: input shape {np.shape(log_intensity)} does not match the model grid "
                        f"{size}³; resample with core.reciprocal.to_model_grid first")
    if not np.all(np.isfinite(x)):
        raise BCDIError("predict_phase: input has NaN or infinite values; clean the intensity first")
    out = run_batched(model, x[..., None], batch_size, progress=progress, cancel=cancel)
    return out[0] if single else out


def run_batched(model, x: np.ndarray, batch_size: int = 4, *, progress=None, cancel=None) -> np.ndarray:
    """``model`` on ``x`` (n, S, S, S, channels) in batches: its single output channel, (n, S, S, S) float32."""
    out = np.empty(x.shape[:4], dtype=np.float32)
    n = len(x)
    report(progress, cancel, 0, n)
    for i in range(0, n, batch_size):
        out[i:i + batch_size] = np.asarray(model(x[i:i + batch_size], training=False))[..., 0]
        report(progress, cancel, min(n, i + batch_size), n)
    return out
