"""TensorFlow and napari's 3D GL canvas in one process (the guard in ``models/_keras.py``).

TensorFlow >= 2.20 exports LLVM symbols that clash with Mesa's libLLVM: without the guard, a process that
renders a 3D napari canvas and runs a Keras model dies with SIGSEGV (rc -11, 139 through a shell), in
either order (``../shared/notes/headless-napari-and-tensorflow.md``). Which side is loaded first can be
chosen only once per process, so each order runs in a fresh child (``_tf_gl_child.py``); the child
inherits the Xvfb ``DISPLAY`` that pytest-xvfb set up. The in-process test checks the same inside the
pytest session, whatever was loaded before.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CHILD = Path(__file__).with_name("_tf_gl_child.py")

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def _child_env() -> dict:
    env = dict(os.environ)
    if not env.get("DISPLAY"):
        pytest.skip("no X display (pytest-xvfb did not start Xvfb)")
    env.pop("QT_QPA_PLATFORM", None)  # napari needs the xcb platform of the Xvfb display
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


@pytest.mark.parametrize("steps", [["tf", "gl"], ["gl", "tf", "gl"]],
                         ids=["tf-then-gl", "gl-then-tf-then-gl"])
def test_3d_canvas_and_keras_model_in_one_process(steps):
    env = _child_env()
    proc = subprocess.run([sys.executable, str(CHILD), *steps], env=env, capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    crashed = " (SIGSEGV: the TensorFlow/Mesa LLVM clash, the guard did not hold)" if proc.returncode in (
        -11, 139) else ""
    order = " -> ".join(steps)
    assert proc.returncode == 0, f"child {order} exited {proc.returncode}{crashed}\n{out[-3000:]}"
    assert "ALL OK" in proc.stdout, out[-3000:]
    assert proc.stdout.count("gl ok") == steps.count("gl")
    assert proc.stdout.count("tf ok: backend tensorflow") == 1


def test_in_process_3d_render_and_keras(make_napari_viewer):
    """The same inside the pytest process: render 3D, run a model, render again."""
    from napari_bcdi_dl.models._keras import keras as keras_door

    viewer = make_napari_viewer(show=True)
    z, y, x = np.mgrid[-12:12, -12:12, -12:12].astype(np.float32)
    viewer.add_image(np.exp(-(x**2 + 2 * y**2 + z**2) / 40.0).astype(np.float32), rendering="mip")
    viewer.dims.ndisplay = 3

    def lit() -> int:
        shot = np.asarray(viewer.screenshot(canvas_only=True, flash=False))[..., :3]
        return int((shot.max(axis=-1) > 40).sum())

    assert lit() > 50, "3D canvas is blank before the model"

    keras = keras_door()
    inp = keras.Input((8, 8, 8, 1))
    out = keras.layers.Conv3D(2, 3, padding="same")(inp)
    model = keras.Model(inp, out)
    pred = np.asarray(model.predict(np.ones((1, 8, 8, 8, 1), np.float32), verbose=0))
    assert pred.shape == (1, 8, 8, 8, 2) and np.isfinite(pred).all()

    viewer.layers[0].colormap = "viridis"
    assert lit() > 50, "3D canvas is blank after the model"
