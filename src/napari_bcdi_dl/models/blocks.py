"""U-Net parts shared by the models: (dilated) convolution blocks, down and up blocks, a U-Net builder.

Everything here is built from Keras's own layers (functional API, no custom layer classes), so a model
made of these parts saves to ``.keras`` and loads back with ``keras.saving.load_model`` on any backend
without ``custom_objects``. The parts work in 2D or 3D (``dims``), channels last.

Design note (CPU cost): the cost of a U-Net is dominated by its full-resolution layers, not by its
parameter count. Keep the first level thin (few channels, few convolutions, dilation for receptive
field) and put the width in the deep levels (``../shared/notes/cpu-training-budget.md``).

Examples
--------
>>> model = unet((32, 32, 32, 2), out_channels=1, widths=(8, 24, 48, 96),
...              dilations=((1, 2), (1, 2), (1, 1), (1, 1)))        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._keras import keras


def _layer(kind: str, dims: int):
    k = keras()
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims}")
    if kind == "ConvTranspose":
        return getattr(k.layers, f"Conv{dims}DTranspose")
    return getattr(k.layers, f"{kind}{dims}D")


def _name(prefix: str | None, suffix: str) -> str | None:
    return None if prefix is None else f"{prefix}_{suffix}"


def norm_groups(channels: int, most: int = 8) -> int:
    """Groups of a GroupNormalization over ``channels``: the largest divisor of ``channels`` up to ``most``
    (8 for any multiple of 8, as in the shipped inpainting model; 6 for 12 channels; 1 for a prime)."""
    return max(g for g in range(1, min(most, channels) + 1) if channels % g == 0)


def conv_block(
    x: Any,
    filters: int,
    *,
    dims: int = 3,
    kernel_size: int = 3,
    dilation_rates: Sequence[int] = (1, 1),
    activation: str = "relu",
    norm: str | None = None,
    residual: bool = False,
    name: str | None = None,
) -> Any:
    """A stack of ``len(dilation_rates)`` convolutions (``same`` padding), one per dilation rate.

    Parameters
    ----------
    x : Keras tensor (batch, *spatial, channels).
    filters : output channels of every convolution.
    dims : 2 or 3 spatial dimensions.
    kernel_size : kernel side.
    dilation_rates : one convolution per entry, with that dilation (``(1, 2)`` = plain then dilated).
    activation : Keras activation name applied after each convolution (after the normalisation).
    norm : None, ``"batch"`` or ``"group"`` (GroupNormalization, :func:`norm_groups` groups).
    residual : add a (1×1 projected if needed) shortcut from the block's input to its output.
    name : layer-name prefix (None: Keras names).
    """
    k = keras()
    conv = _layer("Conv", dims)
    inp = x
    for i, d in enumerate(dilation_rates):
        x = conv(filters, kernel_size, padding="same", dilation_rate=int(d), use_bias=norm is None,
                 kernel_initializer="he_normal", name=_name(name, f"conv{i}"))(x)
        if norm == "batch":
            x = k.layers.BatchNormalization(name=_name(name, f"bn{i}"))(x)
        elif norm == "group":
            x = k.layers.GroupNormalization(groups=norm_groups(filters), name=_name(name, f"gn{i}"))(x)
        elif norm is not None:
            raise ValueError(f"norm must be None, 'batch' or 'group', got {norm!r}")
        if residual and i == len(dilation_rates) - 1:
            if inp.shape[-1] != filters:
                inp = conv(filters, 1, padding="same", name=_name(name, "proj"))(inp)
            x = k.layers.Add(name=_name(name, "add"))([x, inp])
        x = k.layers.Activation(activation, name=_name(name, f"act{i}"))(x)
    return x


def down_block(
    x: Any,
    filters: int,
    *,
    dims: int = 3,
    dilation_rates: Sequence[int] = (1, 1),
    pool: str = "max",
    name: str | None = None,
    **conv_kw: Any,
) -> tuple[Any, Any]:
    """Encoder level: :func:`conv_block` then halve the resolution.

    Returns ``(skip, down)``: the block's full-resolution output (for the decoder) and the halved tensor.
    ``pool`` is ``"max"`` (MaxPooling), ``"avg"`` or ``"stride"`` (a 2-strided convolution, ``filters``
    channels).
    """
    skip = conv_block(x, filters, dims=dims, dilation_rates=dilation_rates, name=name, **conv_kw)
    if pool == "max":
        down = _layer("MaxPooling", dims)(2, name=_name(name, "pool"))(skip)
    elif pool == "avg":
        down = _layer("AveragePooling", dims)(2, name=_name(name, "pool"))(skip)
    elif pool == "stride":
        down = _layer("Conv", dims)(filters, 2, strides=2, padding="same", activation="relu",
                                    kernel_initializer="he_normal", name=_name(name, "down"))(skip)
    else:
        raise ValueError(f"pool must be 'max', 'avg' or 'stride', got {pool!r}")
    return skip, down


def up_block(
    x: Any,
    skip: Any,
    filters: int,
    *,
    dims: int = 3,
    dilation_rates: Sequence[int] = (1, 1),
    up: str = "transpose",
    name: str | None = None,
    **conv_kw: Any,
) -> Any:
    """Decoder level: double the resolution, concatenate the encoder's ``skip``, then :func:`conv_block`.

    ``up`` is ``"transpose"`` (2-strided transposed convolution to ``filters`` channels) or
    ``"upsample"`` (nearest upsampling then a 1×1 convolution to ``filters`` channels).
    """
    k = keras()
    if up == "transpose":
        x = _layer("ConvTranspose", dims)(filters, 2, strides=2, padding="same", activation="relu",
                                          kernel_initializer="he_normal", name=_name(name, "up"))(x)
    elif up == "upsample":
        x = _layer("UpSampling", dims)(2, name=_name(name, "up"))(x)
        x = _layer("Conv", dims)(filters, 1, padding="same", activation="relu",
                                 kernel_initializer="he_normal", name=_name(name, "up_proj"))(x)
    else:
        raise ValueError(f"up must be 'transpose' or 'upsample', got {up!r}")
    x = k.layers.Concatenate(name=_name(name, "cat"))([x, skip])
    return conv_block(x, filters, dims=dims, dilation_rates=dilation_rates, name=name, **conv_kw)


def unet(
    input_shape: Sequence[int],
    out_channels: int = 1,
    *,
    widths: Sequence[int] = (8, 16, 32, 64),
    dilations: Sequence[Sequence[int]] | None = None,
    decoder_convs: Sequence[int] | None = None,
    pool: str = "max",
    up: str = "transpose",
    activation: str = "relu",
    norm: str | None = None,
    residual: bool = False,
    out_activation: str | None = None,
    out_kernel_initializer: str = "glorot_uniform",
    context_shape: Sequence[int] | None = None,
    context_widths: Sequence[int] = (8, 16),
    name: str = "unet",
) -> Any:
    """Build a U-Net as a functional ``keras.Model``.

    Parameters
    ----------
    input_shape : spatial shape plus channels, e.g. ``(32, 32, 32, 2)``; each spatial side must be
        divisible by ``2 ** (len(widths) - 1)``.
    out_channels : channels of the last (1×1) convolution.
    widths : channels per level, full resolution first; the last entry is the bottleneck.
    dilations : per level, the dilation rates of its encoder convolutions (one convolution each);
        default ``(1, 2)`` on the first two levels (dilated receptive field at full resolution, cheap),
        ``(1, 1)`` below.
    decoder_convs : per decoder level (full resolution first, ``len(widths) - 1`` entries), the number of
        convolutions after the concatenation; default 2 everywhere, 1 at full resolution.
    pool, up : see :func:`down_block` and :func:`up_block`.
    activation, norm, residual : see :func:`conv_block`.
    out_activation : activation of the output (None: linear).
    out_kernel_initializer : initialiser of the output convolution (``"zeros"`` for a model that predicts
        a correction and should start as the identity).
    context_shape : with a shape (same spatial shape as the input), the model takes a second input, a
        coarse view of twice the input's extent centred on it (``core.gaps.extract_context``, factor 2).
        A small encoder (``context_widths``, one level each, halving the resolution) runs on it; at level
        ``j`` its central half is aligned with the main encoder's level ``j + 1`` and added to it through a
        1×1 convolution initialised at zero, so the model starts as the one without context.
    context_widths : channels of the context encoder's levels (at most ``len(widths) - 1``).
    name : model name.
    """
    k = keras()
    dims = len(input_shape) - 1
    levels = len(widths)
    if levels < 2:
        raise ValueError("a U-Net needs at least 2 levels")
    factor = 2 ** (levels - 1)
    if any(int(s) % factor for s in input_shape[:-1]):
        raise ValueError(f"spatial shape {tuple(input_shape[:-1])} not divisible by {factor}")
    if dilations is None:
        dilations = [(1, 2) if i < 2 else (1, 1) for i in range(levels)]
    if len(dilations) != levels:
        raise ValueError("dilations needs one entry per level")
    if decoder_convs is None:
        decoder_convs = [1] + [2] * (levels - 2)
    if len(decoder_convs) != levels - 1:
        raise ValueError("decoder_convs needs one entry per decoder level (len(widths) - 1)")
    kw = {"dims": dims, "activation": activation, "norm": norm, "residual": residual}
    inputs = k.Input(shape=tuple(int(s) for s in input_shape), name="input")
    x = inputs
    side = _context_features(context_shape, context_widths, widths, dims, kw) if context_shape else {}
    skips = []
    for i in range(levels - 1):
        skip, x = down_block(x, widths[i], dilation_rates=dilations[i], pool=pool, name=f"enc{i}", **kw)
        skips.append(skip)
        if i + 1 in side:
            x = k.layers.Add(name=f"ctx_add{i + 1}")([x, side[i + 1]])
    x = conv_block(x, widths[-1], dilation_rates=dilations[-1], name="bottleneck", **kw)
    for i in reversed(range(levels - 1)):
        x = up_block(x, skips[i], widths[i], dilation_rates=(1,) * int(decoder_convs[i]), up=up,
                     name=f"dec{i}", **kw)
    outputs = _layer("Conv", dims)(out_channels, 1, padding="same", activation=out_activation,
                                   kernel_initializer=out_kernel_initializer, name="output")(x)
    if context_shape:
        return k.Model([inputs, side["input"]], outputs, name=name)
    return k.Model(inputs, outputs, name=name)


def _context_features(shape: Sequence[int], cwidths: Sequence[int], widths: Sequence[int], dims: int,
                      kw: dict) -> dict:
    """The context encoder of :func:`unet`: ``{level: tensor to add, "input": the context Input}``."""
    k = keras()
    if len(cwidths) < 1 or len(cwidths) > len(widths) - 1:
        raise ValueError(f"context_widths needs 1 to {len(widths) - 1} entries, got {len(cwidths)}")
    ctx = k.Input(shape=tuple(int(s) for s in shape), name="context")
    out: dict = {"input": ctx}
    c = ctx
    for j, w in enumerate(cwidths):
        if j:
            c = _layer("MaxPooling", dims)(2, name=f"ctx{j}_pool")(c)
        c = conv_block(c, int(w), dilation_rates=(1, 2), name=f"ctx{j}", **kw)
        n = int(c.shape[1])
        centre = _layer("Cropping", dims)(n // 4, name=f"ctx{j}_crop")(c)
        out[j + 1] = _layer("Conv", dims)(int(widths[j]), 1, padding="same", kernel_initializer="zeros",
                                          name=f"ctx{j}_proj")(centre)
    return out
