"""Shipped weights: ``load_model(name)`` reads ``models/weights/<file>.keras``, offline, cached.

Nothing is ever downloaded: the trained models are package data (each file ≤ 25 MB), made by the
``bcdi-dl train ...`` commands recorded in ``docs/models.md`` and in the ``.json`` card beside each file.

Names
-----
``"inpaint"``
    the detector-gap inpainting U-Net (32³ windows), ``weights/inpaint_unet32.keras``.
``"phase"``
    the reciprocal-space phase U-Net, ``weights/phase_unet32.keras`` (see ``models/dl_phasing.py``).
``"phase64"``
    a 64³ phase U-Net, ``weights/phase_unet64.keras``, trained on a GPU (``docs/gpu-training.md``); optional:
    a version without the file says so. The DL pipeline takes the grid from the model's input shape.
``"phase_corrector"``
    the phase network given an engine estimate of the phase beside the pattern (4 input channels,
    ``models/phase_corrector.py``), ``weights/phase_corrector32.keras``: its candidates join the network's in
    the DL pipeline (docs/models.md, "Phase corrector").

``"defects"``
    the dislocation classifier (64³ patterns -> none/edge/screw/mixed), ``weights/defects_cnn.keras``
    (``models/defects.py``, docs/defects.md); trained with G in any direction: detection, not edge vs screw.
``"defects_gz"``
    the same network continued on patterns with the Bragg vector G along array axis 0 (z),
    ``weights/defects_cnn_gz.keras``: tells edge from screw when G's axis in the array is known
    (``models.defects.classify(..., g_axis=...)`` turns the pattern so that axis is axis 0).

A name may also be a file stem in ``weights/`` (``"inpaint_unet32"``, ``"phase_unet64"``) or a path to a
``.keras`` file. :func:`available_models` lists the names whose files are there.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ..core.errors import BCDIError
from ._keras import keras

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: Model name -> file in ``weights/``.
MODELS: dict[str, str] = {
    "inpaint": "inpaint_unet32.keras",
    "phase": "phase_unet32.keras",
    "phase64": "phase_unet64.keras",
    "phase_corrector": "phase_corrector32.keras",
    "defects": "defects_cnn.keras",
    "defects_gz": "defects_cnn_gz.keras",
}
#: Names whose file may be absent from a version (trained when a GPU machine was there).
OPTIONAL: frozenset[str] = frozenset({"phase64"})

_cache: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def model_path(name: str) -> Path:
    """The file of a model name (see the module docstring); BCDIError if it is not there."""
    if name in MODELS:
        path = WEIGHTS_DIR / MODELS[name]
        if name in OPTIONAL and not path.is_file():
            raise BCDIError(f"model {name!r} ({path.name}) is not in this version: train it on a GPU "
                            "(docs/gpu-training.md) or use 'phase'")
    elif (WEIGHTS_DIR / f"{name}.keras").is_file():
        path = WEIGHTS_DIR / f"{name}.keras"
    else:
        path = Path(name)
        if path.suffix != ".keras":
            known = ", ".join(sorted(MODELS))
            raise BCDIError(f"unknown model {name!r}: use one of {known} or a path to a .keras file")
    if not path.is_file():
        raise BCDIError(f"model file {path} is missing: reinstall napari-bcdi-dl, or train it with "
                        f"'bcdi-dl train' (docs/models.md)")
    return path


def available_models() -> dict[str, Path]:
    """Names (of :data:`MODELS`, then other file stems in ``weights/``) whose ``.keras`` file is there."""
    out = {name: WEIGHTS_DIR / f for name, f in MODELS.items() if (WEIGHTS_DIR / f).is_file()}
    shipped = set(out.values())
    for path in sorted(WEIGHTS_DIR.glob("*.keras")):
        if path not in shipped:
            out[path.stem] = path
    return out


def model_card(name: str) -> dict | None:
    """The ``.json`` card beside a model's file (training data, steps, held-out metrics), or None."""
    card = model_path(name).with_suffix(".json")
    if not card.is_file():
        return None
    return json.loads(card.read_text())


def load_model(name: str = "inpaint", *, fresh: bool = False) -> Any:
    """Load a shipped model (uncompiled), cached per name and Keras backend.

    Parameters
    ----------
    name : model name, weights file stem, or path to a ``.keras`` file.
    fresh : return a new, private copy (for fine-tuning: the cached model must not be trained).

    Raises
    ------
    BCDIError
        Unknown name, missing or unreadable file.
    """
    k = keras()
    path = model_path(name)
    key = (str(path), k.backend.backend())
    with _lock:
        if not fresh and key in _cache:
            return _cache[key]
        try:
            model = k.saving.load_model(str(path), compile=False)
        except Exception as err:  # noqa: BLE001 - a corrupt or incompatible file: tell the user which
            raise BCDIError(f"cannot load model {path}: {type(err).__name__}: {err}") from None
        if not fresh:
            _cache[key] = model
        return model


def clear_cache() -> None:
    """Forget the loaded models (tests; after replacing a weights file)."""
    with _lock:
        _cache.clear()
