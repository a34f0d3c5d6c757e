"""The widgets' model jobs, run in the model process (:mod:`._worker_process`) by name.

This module imports no Qt, no napari and (at import) no TensorFlow: the child process unpickles these
functions by their module path, and the napari process imports this module to name them. Each takes
``progress=`` and ``cancel=`` (the protocol of :mod:`napari_bcdi_dl.core.progress`) and calls the same
``models`` functions with the same arguments as the widgets did in a thread.

A fine-tuned inpainting model cannot cross the process boundary (it is a Keras model; the napari process
must not import TensorFlow), so it stays in the child, in :data:`_MODELS`, and the widget holds a
:class:`ChildModel` handle. If the child is replaced (it died), the handle no longer resolves and the run
fails with a one-line :class:`BCDIError` telling the user to fine-tune again or reset the model.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import BCDIError

#: fine-tuned models held by this (child) process, by key
_MODELS: dict[str, Any] = {}
_KEYS = itertools.count(1)


@dataclass(frozen=True)
class ChildModel:
    """A handle on a model that lives in the model process ``pid`` under ``key``."""

    key: str
    pid: int


def _resolve(model: ChildModel | None) -> Any:
    if model is None:
        return None
    found = _MODELS.get(model.key) if model.pid == os.getpid() else None
    if found is None:
        raise BCDIError("the fine-tuned model was lost when the model process restarted: fine-tune again "
                        "or press Reset model")
    return found


# ------------------------------------------------------------------------------------------ DL phase
def predict_job(intensity: np.ndarray, mask: np.ndarray | None, *, candidates: int = 1, filled: bool = False,
                corrector: bool = False, progress=None, cancel=None):
    """Job of *Predict* (loads the shipped model on first use): the best ``candidates`` on the data grid (per
    source: with ``corrector``, the shipped phase corrector's too). ``filled``: the gap was inpainted, so the
    fill is the network's input (the mask is not applied here)."""
    from ..models.dl_phasing import predict_object, resolve_corrector

    return predict_object(intensity, None if filled else mask, keep=int(candidates), progress=progress,
                          corrector=resolve_corrector("default" if corrector else None), cancel=cancel)


def predict_refine_job(intensity: np.ndarray, mask: np.ndarray | None, cfg, *, filled: bool = False,
                       progress=None, cancel=None):
    """Job of *Predict + refine*: ``pipeline.steps.phase_step`` of the dock's DL configuration (the step
    ``bcdi-dl phase --method dl`` and ``bcdi-dl run`` run), returning its ``PhaseOutcome`` (prediction and
    refined reconstruction); ``filled`` as for ``phase_step``."""
    from ..pipeline.steps import phase_step

    return phase_step(cfg, intensity, mask, filled=filled, progress=progress, cancel=cancel)


# ---------------------------------------------------------------------------------------- Inpainting
def inpaint_job(data: np.ndarray, mask: np.ndarray, *, method: str, step: int, model: ChildModel | None = None,
                progress=None, cancel=None) -> np.ndarray:
    """``pipeline.steps.inpaint_step`` of the dock's settings (as ``bcdi-dl inpaint`` and ``bcdi-dl run``), with
    the shipped model or the fine-tuned one ``model`` refers to; the filled pattern (the data when nothing is
    masked)."""
    from ..pipeline.steps import inpaint_step, step_config

    cfg = step_config("Inpainting dock", inpaint={"method": method, "step": step})
    out = inpaint_step(cfg, data, mask, model=_resolve(model), progress=progress, cancel=cancel)
    return np.array(data, np.float32) if out.filled is None else out.filled


def finetune_job(data: np.ndarray, mask: np.ndarray, *, model: ChildModel | None = None, steps: int,
                 progress=None, cancel=None):
    """``models.finetune.finetune`` from ``model`` (default a fresh copy of the shipped model); the result's
    ``model`` is a :class:`ChildModel` handle on the tuned model, kept in this process."""
    from ..models.finetune import finetune

    res = finetune(data, mask, model=_resolve(model), steps=steps, progress=progress, cancel=cancel)
    key = model.key if model is not None else f"inpaint-finetuned-{next(_KEYS)}"
    _MODELS[key] = res.model  # fine-tuning goes on in place from a tuned model: same key
    return dataclasses.replace(res, model=ChildModel(key, os.getpid()))
