"""Opening the reader, the sample data or the widgets never imports TensorFlow or Keras (4-7 s, and the
GL clash): checked in fresh subprocesses, since this pytest process may have loaded TensorFlow already.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

HEAVY = ("tensorflow", "keras", "torch", "jax")

_CHECK = textwrap.dedent(
    """
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
    if loaded:
        print("HEAVY MODULES:", ", ".join(loaded[:20]))
        sys.exit(1)
    print("CLEAN")
    """
)


def _run(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)
    env.setdefault("KERAS_BACKEND", "tensorflow")
    src = textwrap.dedent(code) + _CHECK.format(heavy=set(HEAVY))
    return subprocess.run([sys.executable, "-c", src], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _assert_clean(proc: subprocess.CompletedProcess) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "CLEAN" in proc.stdout, out[-4000:]


@pytest.fixture
def small_npy(tmp_path):
    a = np.random.default_rng(0).poisson(3.0, (8, 16, 16)).astype(np.float32)
    p = tmp_path / "small.npy"
    np.save(p, a)
    return p


def test_entry_points_and_reader_and_sample_do_not_import_tensorflow(small_npy):
    """The npe2 entry points called as napari calls them, without napari's viewer."""
    proc = _run(
        f"""
        import sys, pkgutil, importlib
        import napari_bcdi_dl
        from napari_bcdi_dl import _reader, _writer, _sample_data
        import napari_bcdi_dl.widgets as w
        for m in pkgutil.iter_modules(w.__path__):
            importlib.import_module("napari_bcdi_dl.widgets." + m.name)
        from napari_bcdi_dl.cli import build_parser
        build_parser()                                  # imports every CLI command module
        reader = _reader.get_reader({str(small_npy)!r})
        assert reader is not None, "the reader declined a .npy"
        layers = reader({str(small_npy)!r})
        assert layers and layers[0][0].shape == (8, 16, 16), layers
        for name in ("strained_particle_with_gap", "strained_particle_truth"):
            out = getattr(_sample_data, name)()
            assert out and out[0][0].ndim == 3
        """
    )
    _assert_clean(proc)


def test_importing_every_module_does_not_import_tensorflow():
    """Model modules too: Keras is loaded by calling ``models._keras.keras()``, never by an import."""
    proc = _run(
        """
        import sys, pkgutil, importlib
        import napari_bcdi_dl
        names = [m.name for m in pkgutil.walk_packages(napari_bcdi_dl.__path__, "napari_bcdi_dl.")]
        skip = ("napari_bcdi_dl.cli.__main__",)
        for name in names:
            if name not in skip:
                importlib.import_module(name)
        print("imported", len(names), "modules")
        """
    )
    _assert_clean(proc)


@pytest.mark.gui
@pytest.mark.slow
def test_napari_opening_reader_sample_and_widgets_does_not_import_tensorflow(small_npy):
    """The same through a real napari viewer: File > Open, File > Open Sample, Plugins > BCDI DL."""
    if not os.environ.get("DISPLAY"):
        pytest.skip("no X display (pytest-xvfb did not start Xvfb)")
    proc = _run(
        f"""
        import sys
        import napari
        from napari_bcdi_dl.cli.demo import widget_names
        viewer = napari.Viewer(show=False)
        layers = viewer.open({str(small_npy)!r}, plugin="napari-bcdi-dl")
        assert layers and layers[0].data.shape == (8, 16, 16)
        viewer.open_sample("napari-bcdi-dl", "strained_particle_with_gap")
        viewer.open_sample("napari-bcdi-dl", "strained_particle_truth")
        for name in widget_names():
            viewer.window.add_plugin_dock_widget("napari-bcdi-dl", name)
        viewer.dims.ndisplay = 3
        print(len(viewer.layers), "layers")
        viewer.close()
        """
    )
    _assert_clean(proc)
