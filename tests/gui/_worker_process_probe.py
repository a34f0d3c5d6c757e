"""Module-level functions that ``tests/gui/test_worker_process.py`` runs in the model process (the child
imports them by name, so they cannot live in the test module's closures)."""

from __future__ import annotations

import os
import threading

import numpy as np

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.progress import report


def scaled(a, *, factor, progress=None, cancel=None):
    report(progress, cancel, 1, 2)
    report(progress, cancel, 2, 2)
    return np.asarray(a) * factor, os.getpid()


def loop_until_cancelled(*, progress=None, cancel=None):
    for i in range(100_000):
        report(progress, cancel, i, 100_000)
        threading.Event().wait(0.002)
    return "finished"


def bad_input(*, progress=None, cancel=None):
    raise BCDIError("scan.h5 has no 3D dataset: choose another file")


def crash(*, progress=None, cancel=None):
    os._exit(3)


def gui_modules(*, progress=None, cancel=None):
    import sys

    return sorted(m for m in ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "vispy") if m in sys.modules)
