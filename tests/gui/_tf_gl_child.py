"""Child process for ``test_tf_and_gl.py``: napari 3D rendering and a Keras model in one process.

Usage: ``python _tf_gl_child.py STEP [STEP ...] [--unguarded]`` where each STEP is ``gl`` (render a 3D
napari canvas, screenshot it, check it is not blank) or ``tf`` (build, train one step and run a small
Keras 3D conv model). The order in which TensorFlow and the GL canvas first meet can be chosen only once
per process, hence one process per order. ``--unguarded`` imports TensorFlow plainly instead of through
``napari_bcdi_dl.models._keras`` (used once by hand to show the crash the guard prevents: rc -11/139).
Exit status 0 and ``ALL OK`` on stdout mean the steps ran and the process ended cleanly.
"""

from __future__ import annotations

import sys

import numpy as np

_viewer = None


def step_gl() -> None:
    global _viewer
    import napari

    if _viewer is None:
        _viewer = napari.Viewer(show=True)
        z, y, x = np.mgrid[-16:16, -16:16, -16:16].astype(np.float32)
        blob = np.exp(-(x**2 + y**2 + z**2) / 60.0) * (1 + 0.3 * np.cos(x / 2.0))
        _viewer.add_image(blob.astype(np.float32), name="blob", rendering="mip", colormap="magma")
        _viewer.dims.ndisplay = 3
    camera = _viewer.scene.camera if hasattr(_viewer, "scene") else _viewer.camera  # napari >= 0.9
    camera.angles = (float(np.random.uniform(-30, 30)), 30.0, 60.0)
    shot = _viewer.screenshot(canvas_only=True, flash=False)
    rgb = np.asarray(shot)[..., :3].astype(np.int32)
    lit = int((rgb.max(axis=-1) > 40).sum())
    if lit < 50 or rgb.std() < 1.0:
        print(f"BLANK 3D canvas: {lit} lit pixels, std {rgb.std():.2f}", flush=True)
        sys.exit(3)
    print(f"gl ok: 3D canvas {rgb.shape[1]}x{rgb.shape[0]}, {lit} lit pixels", flush=True)


def step_tf(unguarded: bool) -> None:
    if unguarded:
        import keras  # the plain import: TensorFlow loads its libraries RTLD_GLOBAL
    else:
        from napari_bcdi_dl.models._keras import keras as _door

        keras = _door()
    rng = np.random.default_rng(0)
    inp = keras.Input((8, 8, 8, 1))
    h = keras.layers.Conv3D(4, 3, padding="same", activation="relu")(inp)
    out = keras.layers.Conv3D(1, 1, padding="same")(h)
    model = keras.Model(inp, out)
    model.compile(optimizer="adam", loss="mse")
    x = rng.random((2, 8, 8, 8, 1), dtype=np.float32)
    hist = model.fit(x, x, epochs=1, batch_size=2, verbose=0)
    y = np.asarray(model.predict(x, verbose=0))
    assert y.shape == x.shape and np.isfinite(y).all(), "model output is not finite"
    print(f"tf ok: backend {keras.backend.backend()}, loss {hist.history['loss'][-1]:.4f}", flush=True)


def main(argv: list[str]) -> int:
    unguarded = "--unguarded" in argv
    steps = [a for a in argv if not a.startswith("--")]
    if not steps or any(s not in ("gl", "tf") for s in steps):
        print(__doc__, file=sys.stderr)
        return 2
    for s in steps:
        step_gl() if s == "gl" else step_tf(unguarded)
    if _viewer is not None:
        _viewer.close()
    leaked = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
    print(f"ALL OK ({' -> '.join(steps)}; loaded: {', '.join(leaked) or 'no tensorflow'})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
