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
def predict_job(intensity: np.ndarray, mask: np.ndarray | None, *, progress=None, cancel=None):
    """Job of *Predict* (loads the shipped model on first use)."""
    from ..models.dl_phasing import predict_object

    return predict_object(intensity, mask, progress=progress, cancel=cancel)


def refine_job(intensity: np.ndarray, mask: np.ndarray | None, obj: np.ndarray, support: np.ndarray,
               n_iter: int, *, progress=None, cancel=None):
    """Job of *Refine*: ER with border-only support updates from the prediction (numpy only)."""
    from ..core.phasing import refine

    return refine(intensity, obj, support, mask, n_iter=n_iter, border_only=True, method="dl",
                  progress=progress, cancel=cancel)


def predict_refine_job(intensity: np.ndarray, mask: np.ndarray | None, n_iter: int, *, progress=None,
                       cancel=None):
    """Job of *Predict + refine*: the prediction, then the refinement, one progress bar."""
    from ..core.phasing import refine
    from ..core.progress import report
    from ..models.dl_phasing import predict_object

    total = 10 + int(n_iter)
    pred = predict_object(intensity, mask, progress=lambda d, t: report(progress, cancel, int(10 * d / t), total),
                          cancel=cancel)
    rec = refine(intensity, pred.obj, pred.support, mask, n_iter=int(n_iter), border_only=True, method="dl",
                 progress=lambda d, t: report(progress, cancel, 10 + d, total), cancel=cancel)
    return pred, rec


# ---------------------------------------------------------------------------------------- Inpainting
def inpaint_job(data: np.ndarray, mask: np.ndarray, *, method: str, step: int, model: ChildModel | None = None,
                progress=None, cancel=None) -> np.ndarray:
    """``models.inpaint.inpaint`` with the shipped model, or the fine-tuned one ``model`` refers to."""
    from ..models.inpaint import inpaint

    return inpaint(data, mask, method=method, step=step, model=_resolve(model), progress=progress, cancel=cancel)


def finetune_job(data: np.ndarray, mask: np.ndarray, *, model: ChildModel | None = None, steps: int,
                 progress=None, cancel=None):
    """``models.finetune.finetune`` from ``model`` (default a fresh copy of the shipped model); the result's
    ``model`` is a :class:`ChildModel` handle on the tuned model, kept in this process."""
    from ..models.finetune import finetune

    res = finetune(data, mask, model=_resolve(model), steps=steps, progress=progress, cancel=cancel)
    key = model.key if model is not None else f"inpaint-finetuned-{next(_KEYS)}"
    _MODELS[key] = res.model  # fine-tuning goes on in place from a tuned model: same key
    return dataclasses.replace(res, model=ChildModel(key, os.getpid()))
