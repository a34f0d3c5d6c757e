"""The phase corrector: the phase network given a current phase estimate beside the pattern (issue 17, item 3).

The one-shot network predicts the reciprocal phase from the pattern alone; the phasing engine, started from
that prediction on the model grid, moves it further (held-out ``val32``, 64 samples: WCA 0.756 for the
prediction, 0.599 after ``HIO**200, ER**200`` there). The corrector sees both: its input has three channels,
the normalised log-intensity and the cosine and sine of the estimate's phase (the phase of the engine's
object, centred like the training targets: :func:`.phase_training.centre_phase`), and it predicts the phase
again. It is the shipped network with a wider first convolution: :func:`corrector_from_phase_model` copies
every weight and gives the two new channels zero weights, so before training it *is* the phase network.

* :func:`estimate_phase`: a refinement recipe on the model grid from a predicted phase → the estimate.
* :func:`corrector_input`: the three input channels.
* :func:`correct_phase`: the corrector on a batch of (input, estimate) pairs.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import BCDIError

#: Model-grid recipe that makes the estimate the corrector sees (what it was trained on).
ESTIMATE_RECIPE = "HIO**150, ER**50"


def _fourier_phase(obj: np.ndarray) -> np.ndarray:
    return np.angle(np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj))))


def estimate_phase(intensity_m: np.ndarray, phase_m: np.ndarray, recipe: str = ESTIMATE_RECIPE, *,
                   mask_m: np.ndarray | None = None, support_threshold: float = 0.2, data=None,
                   cancel=None) -> tuple[np.ndarray, float]:
    """The phase estimate after ``recipe`` on the model grid, started from ``phase_m``.

    Returns the centred reciprocal phase of the refined object (float32) and its LLK."""
    from ..core.phasing import refine
    from .dl_phasing import model_grid_object, support_from_object
    from .phase_training import centre_phase

    obj = model_grid_object(intensity_m, phase_m, mask_m)
    sup = support_from_object(obj, support_threshold)
    rec = refine(intensity_m, obj.astype(np.complex64), sup, mask_m, recipe=recipe, llk_every=0, data=data,
                 cancel=cancel)
    return centre_phase(intensity_m, _fourier_phase(rec.obj)), float(rec.llk)


def corrector_input(log_intensity: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """``(..., 3)`` float32: the normalised log-intensity, cos and sin of the phase estimate."""
    x = np.asarray(log_intensity, dtype=np.float32)
    p = np.asarray(phase, dtype=np.float32)
    if x.shape != p.shape:
        raise BCDIError(f"phase corrector: intensity {x.shape} and phase estimate {p.shape} differ in shape")
    return np.stack([x, np.cos(p), np.sin(p)], axis=-1)


def corrector_from_phase_model(model):
    """A 3-channel corrector with ``model``'s architecture and weights; the new input channels get zero
    weights, so it predicts exactly what ``model`` predicts until it is trained."""
    from ._keras import keras

    config = model.get_config()
    found = False
    for layer in config["layers"]:
        layer.pop("build_config", None)  # built again for the new input shape
        if layer.get("class_name") == "InputLayer":
            shape = list(layer["config"]["batch_shape"])
            if shape[-1] != 1:
                raise BCDIError(f"phase corrector: the model's input has {shape[-1]} channels; give a phase model")
            layer["config"]["batch_shape"] = shape[:-1] + [3]
            found = True
    if not found:
        raise BCDIError("phase corrector: the model has no input layer; give a functional phase model")
    new = keras().Model.from_config(config)
    weights = []
    for old, fresh in zip(model.get_weights(), new.get_weights()):
        if old.shape == fresh.shape:
            weights.append(old)
        else:  # the first convolution's kernel: (k, k, k, 1, w) -> (k, k, k, 3, w), new channels zero
            w = np.zeros(fresh.shape, dtype=old.dtype)
            w[..., :old.shape[-2], :] = old
            weights.append(w)
    new.set_weights(weights)
    return new


def is_corrector(model) -> bool:
    """Whether a loaded model takes the corrector's three channels."""
    return int(tuple(model.input_shape)[-1]) == 3


def correct_phase(model, log_intensity: np.ndarray, phase: np.ndarray, *, batch_size: int = 4) -> np.ndarray:
    """The corrector's phase for one (S, S, S) or a batch (n, S, S, S) of inputs and estimates (float32)."""
    x = corrector_input(log_intensity, phase)
    single = x.ndim == 4
    if single:
        x = x[None]
    if not is_corrector(model):
        raise BCDIError("phase corrector: the model takes one input channel; load a corrector (3 channels)")
    size = int(tuple(model.input_shape)[1])
    if x.shape[1:4] != (size,) * 3:
        raise BCDIError(f"phase corrector: input {x.shape[1:4]} does not match the model grid {size}³")
    out = np.empty(x.shape[:4], dtype=np.float32)
    for i in range(0, len(x), batch_size):
        out[i:i + batch_size] = np.asarray(model(x[i:i + batch_size], training=False))[..., 0]
    return out[0] if single else out
