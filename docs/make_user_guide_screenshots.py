"""Screenshots of docs/user-guide.md, taken from a real napari viewer walking the demo path.

Run from the repository root, on a display (napari cannot render offscreen)::

    xvfb-run -a .venv/bin/python docs/make_user_guide_screenshots.py            # the 128³ sample
    xvfb-run -a .venv/bin/python docs/make_user_guide_screenshots.py --size 64  # a faster 64³ simulation

It opens the viewer as ``bcdi-dl demo`` does (``cli.demo.open_demo``: every widget docked), then
Data & mask (the sample's gap mask, dilated by 1) → Inpainting (linear) → DL phase (predict + refine) →
Phasing (short conventional recipe) → Results (post-process both, compare), and after each step raises that
widget's dock and saves the window, downscaled, as ``docs/img/guide_<step>.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "img"
WIDTH = 1100  # px of the saved PNGs
TIMEOUT_S = 900


def _process(seconds: float = 0.3) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def _wait(job, what: str) -> None:
    if job is None:
        sys.exit(f"make_user_guide_screenshots: {what} did not start")
    t0 = time.perf_counter()
    while not job.done:
        _process(0.05)
        if time.perf_counter() - t0 > TIMEOUT_S:
            job.cancel()
            sys.exit(f"make_user_guide_screenshots: {what} took more than {TIMEOUT_S} s")
    if job.error is not None or job.cancelled:
        sys.exit(f"make_user_guide_screenshots: {what} failed: {job.error!r}")
    print(f"  {what}: {time.perf_counter() - t0:.1f} s", flush=True)
    _process(0.5)


def _raise(widget) -> None:
    """Bring the dock holding ``widget`` to the front of its tab group."""
    from qtpy.QtWidgets import QDockWidget

    w = widget
    while w is not None and not isinstance(w, QDockWidget):
        w = w.parentWidget()
    if w is not None:
        w.show()
        w.raise_()
    _process(0.5)


def _save(viewer, name: str) -> Path:
    from PIL import Image

    img = viewer.screenshot(canvas_only=False, flash=False)
    pil = Image.fromarray(np.asarray(img)[..., :3])
    if pil.width > WIDTH:
        pil = pil.resize((WIDTH, round(pil.height * WIDTH / pil.width)), Image.LANCZOS)
    pil = pil.quantize(colors=192, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    path = OUT / f"guide_{name}.png"
    pil.save(path, optimize=True)
    print(f"  wrote {path.relative_to(OUT.parent.parent)} ({path.stat().st_size // 1024} KB)", flush=True)
    return path


def _only(viewer, names) -> None:
    for layer in viewer.layers:
        layer.visible = layer.name in names


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=0, help="use a simulated pattern of this size instead of "
                    "the 128³ sample (e.g. 64: faster)")
    ap.add_argument("--refine", default="HIO**50, ER**50", help="refinement recipe of the DL phase dock")
    ap.add_argument("--recipe", default="HIO**200, ER**100", help="conventional phasing recipe")
    args = ap.parse_args(argv)

    import napari

    from napari_bcdi_dl.cli.demo import open_demo

    OUT.mkdir(exist_ok=True)
    viewer = napari.Viewer(title="napari-bcdi-dl demo", show=True)
    viewer.window._qt_window.resize(1500, 950)
    opened = open_demo(viewer, sample=args.size == 0)
    w = opened["widgets"]
    dm, inp, dl, ph, res = (w[k] for k in ("Data & mask", "Inpainting", "DL phase", "Phasing", "Results"))
    if args.size:
        from napari_bcdi_dl.core.simulate import simulate_pattern

        p = simulate_pattern(size=args.size, seed=3, phase_range=2.0, gap="line:2", max_counts=1e6)
        viewer.add_image(p.intensity, name="particle", colormap="magma", gamma=0.2,
                         metadata={"bcdi": {"kind": "intensity"}})
        viewer.add_labels(p.mask, name="particle gap mask", opacity=0.5)
    data = dm.data_layer
    name = data.name
    print(f"data: {name} {data.data.shape} ({opened['source'] or 'simulated'})", flush=True)
    mid = data.data.shape[0] // 2
    viewer.dims.set_point(0, mid * data.scale[0])

    # 1. Data & mask
    _raise(dm)
    if dm.mask_layer is None or not np.any(dm.mask_layer.data):
        _wait(dm.detect_gaps(), "auto-detect gaps")
    _wait(dm.dilate(1, plane_only=True), "dilate")
    _save(viewer, "data_mask")

    # 2. Inpainting
    inp.set_layers(data, dm.mask_layer)
    inp.method_combo.setCurrentText("linear")
    _wait(inp.run(), "inpaint (linear)")
    _raise(inp)
    _only(viewer, {f"{name} inpainted"})
    _save(viewer, "inpainting")
    src = f"{name} inpainted"

    # 3. DL phase
    dl.select_layers(src, dm.mask_layer.name)
    dl.set_recipe(args.refine)
    _wait(dl.predict_and_refine(), "DL predict + refine")
    _raise(dl)
    viewer.dims.ndisplay = 2
    _only(viewer, {f"{src} DL phase"})
    viewer.dims.set_point(0, data.data.shape[0] // 2)
    viewer.reset_view()
    _save(viewer, "dl_phase")

    # 4. Phasing (conventional)
    ph.select_layers(src, dm.mask_layer.name)
    ph.recipe_edit.setText(args.recipe)
    _wait(ph.start(), f"phasing ({args.recipe})")
    _raise(ph)
    _only(viewer, {f"{src} conventional phase"})
    _save(viewer, "phasing")

    # 5. Results: post-process the DL result, show the strain in 3D
    res.select_source(f"{src} DL modulus")
    res.name_edit.setText("DL")
    _wait(res.process(), "post-process DL")
    res.select_source(f"{src} conventional modulus")
    res.name_edit.setText("conventional")
    _wait(res.process(), "post-process conventional")
    res.select_source(f"{src} DL modulus")  # show the DL result's fields in the widget
    res.name_edit.setText("DL")
    _wait(res.process(), "post-process DL (again, for the display)")
    _raise(res)
    _only(viewer, {"DL strain"})
    viewer.dims.ndisplay = 3
    getattr(viewer, "scene", viewer).camera.angles = (15, -30, 80)
    viewer.reset_view()
    _save(viewer, "results")

    # 6. Compare conventional and DL
    _wait(res.compare([f"{src} conventional modulus", f"{src} DL modulus"]), "compare")
    shown = {lay.name for lay in viewer.layers if lay.name.startswith("compare ")}
    _only(viewer, shown)  # (the widget's own hiding does not work when docked as a plugin: see report)
    viewer.dims.ndisplay = 2
    viewer.reset_view()
    _raise(res)
    _save(viewer, "compare")

    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
