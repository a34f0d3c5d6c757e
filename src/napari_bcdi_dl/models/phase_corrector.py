"""The phase corrector: the phase network given a current phase estimate beside the pattern (issue 17, item 3).

The one-shot network predicts the reciprocal phase from the pattern alone; the phasing engine, started from
that prediction on the model grid, moves it further (held-out ``val32``: WCA 0.766 for the prediction, 0.627
after :data:`ESTIMATE_RECIPE` there; ``corrector_training.baselines``, in the card). The corrector sees both: its input has four channels,
the normalised log-intensity, the cosine and sine of the estimate's phase (the phase of the engine's
object, centred like the training targets: :func:`.phase_training.centre_phase`) and that phase itself, and
it predicts a correction that is added to the estimate. It is the shipped network with a wider first
convolution and a new last one: :func:`corrector_from_phase_model` copies every weight, gives the new input
channels zero weights and the correction a zero start, so before training it returns the estimate.

(A first version predicted the phase itself from three channels, the network's weights unchanged: in 1,000
steps it did not learn to use the estimate, held-out WCA 0.772 against 0.627 for the estimate alone;
turning cos/sin back into an unwrapped phase is what a convolutional network does badly.)

* :func:`estimate_phase`: a refinement recipe on the model grid from a predicted phase → the estimate.
* :func:`corrector_input`: the four input channels.
* :func:`correct_phase`: the corrector on a batch of (input, estimate) pairs.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import BCDIError

#: Model-grid recipe that makes the estimate the corrector sees (what it was trained on).
ESTIMATE_RECIPE = "HIO**150, ER**50"


def estimate_phase(intensity_m: np.ndarray, phase_m: np.ndarray, recipe: str = ESTIMATE_RECIPE, *,
                   mask_m: np.ndarray | None = None, support_threshold: float = 0.2, data=None,
                   cancel=None) -> np.ndarray:
    """The phase estimate after ``recipe`` on the model grid, started from ``phase_m``: the centred
    reciprocal phase of the refined object (float32)."""
    from ..core.phasing import refine
    from ..core.simulate.diffraction import far_field
    from .dl_phasing import model_grid_object, support_from_object
    from .phase_training import centre_phase

    obj = model_grid_object(intensity_m, phase_m, mask_m)
    sup = support_from_object(obj, support_threshold)
    rec = refine(intensity_m, obj.astype(np.complex64), sup, mask_m, recipe=recipe, llk_every=0, data=data,
                 cancel=cancel)
    return centre_phase(intensity_m, np.angle(far_field(rec.obj)))


def corrector_input(log_intensity: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """``(..., 4)`` float32: the normalised log-intensity, cos and sin of the phase estimate, and the estimate
    wrapped to [-π, π] (the value the corrector adds its correction to)."""
    x = np.asarray(log_intensity, dtype=np.float32)
    p = np.asarray(phase, dtype=np.float32)
    if x.shape != p.shape:
        raise BCDIError(f"phase corrector: intensity {x.shape} and phase estimate {p.shape} differ in shape")
    c, s = np.cos(p), np.sin(p)
    return np.stack([x, c, s, np.arctan2(s, c)], axis=-1)


def corrector_from_phase_model(model, arch: dict):
    """A corrector (``build_phase_net(**arch, corrector=True)``) from a phase model of architecture ``arch``
    (its card's): every layer's weights are copied, the new input channels of the first convolution get zero
    weights and the correction starts at zero, so it predicts the estimate it is given until it is trained."""
    from .phase import build_phase_net

    corr = build_phase_net(**{k: v for k, v in arch.items() if k != "corrector"}, corrector=True)
    names = {layer.name for layer in model.layers}
    for layer in corr.layers:
        if layer.name not in names or layer.name in ("phase", "phase_delta", "estimate"):
            continue
        old = model.get_layer(layer.name).get_weights()
        new = layer.get_weights()
        if len(old) != len(new):
            raise BCDIError(f"phase corrector: layer {layer.name!r} differs from the phase model's; give the "
                            "model's own architecture (its card's 'arch')")
        out = []
        for o, n in zip(old, new):
            if o.shape == n.shape:
                out.append(o)
            elif o.ndim == 5 and o.shape[:3] + o.shape[4:] == n.shape[:3] + n.shape[4:]:
                w = np.zeros(n.shape, dtype=o.dtype)  # the first convolution: new input channels at zero
                w[..., :o.shape[3], :] = o
                out.append(w)
            else:
                raise BCDIError(f"phase corrector: layer {layer.name!r} has weights {o.shape}, the corrector "
                                f"{n.shape}; give the model's own architecture (its card's 'arch')")
        layer.set_weights(out)
    return corr


def is_corrector(model) -> bool:
    """Whether a loaded model takes the corrector's four channels."""
    return int(tuple(model.input_shape)[-1]) == 4


def correct_phase(model, log_intensity: np.ndarray, phase: np.ndarray, *, batch_size: int = 4) -> np.ndarray:
    """The corrector's phase for one (S, S, S) or a batch (n, S, S, S) of inputs and estimates (float32)."""
    from .phase import model_grid_size, run_batched

    if not is_corrector(model):
        raise BCDIError("phase corrector: the model takes one input channel; load a corrector (4 channels)")
    x = corrector_input(log_intensity, phase)
    single = x.ndim == 4
    if single:
        x = x[None]
    size = model_grid_size(model)
    if x.shape[1:4] != (size,) * 3:
        raise BCDIError(f"phase corrector: input {x.shape[1:4]} does not match the model grid {size}³")
    out = run_batched(model, x, batch_size)
    return out[0] if single else out
