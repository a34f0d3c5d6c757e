"""Screenshots of docs/user-guide.md, taken from a real napari viewer walking the demo path.

Run from the repository root, on a display (napari cannot render offscreen)::

    xvfb-run -a .venv/bin/python docs/make_user_guide_screenshots.py            # the 128³ sample
    xvfb-run -a .venv/bin/python docs/make_user_guide_screenshots.py --size 64  # a faster 64³ simulation

It opens the viewer as ``bcdi-dl demo`` does (``cli.demo.open_demo``: every widget docked), then
Data & mask (the sample's gap mask, dilated by 1) → Inpainting (linear) → DL phase (predict + refine) →
Phasing (short conventional recipe) → Results (post-process both: the isosurface coloured by strain in 3D,
then the slices through the crystal's centre of mass in 2D; compare: coloured isosurfaces side by side;
the one-page report), and after each step raises that widget's dock and saves the window, downscaled, as
``docs/img/guide_<step>.png`` (the report page as ``guide_report.png``). The ``--size`` pattern carries the
sample's ID01-like geometry, so every step is in physical units as in the demo.
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


def _scroll_to(widget) -> None:
    """Scroll the dock holding ``widget`` so that ``widget`` is in view."""
    from qtpy.QtWidgets import QScrollArea

    w = widget
    while w is not None and not isinstance(w, QScrollArea):
        w = w.parentWidget()
    if w is not None:
        w.ensureWidgetVisible(widget, 0, 20)
    _process(0.3)


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


def _shrink(path: Path, out: Path) -> Path:
    """Save ``path`` (a report page) downscaled to :data:`WIDTH` px as ``out``."""
    from PIL import Image

    with Image.open(path) as im:
        pil = im.convert("RGB")
    pil = pil.resize((WIDTH, round(pil.height * WIDTH / pil.width)), Image.LANCZOS)
    pil = pil.quantize(colors=192, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pil.save(out, optimize=True)
    print(f"  wrote {out.relative_to(OUT.parent.parent)} ({out.stat().st_size // 1024} KB)", flush=True)
    return out


def _only(viewer, names) -> None:
    """Show only the layers ``names``; in 2D, slice through the middle of the first of them and fit the view
    to it (reciprocal-space layers are in 1/nm, real-space ones in nm: one slicing point does not suit both)."""
    shown = [layer for layer in viewer.layers if layer.name in names]
    for layer in viewer.layers:
        layer.visible = layer in shown
    if shown and viewer.dims.ndisplay == 2 and getattr(shown[0].data, "ndim", 0) == 3:
        layer = shown[0]
        mid = [t + s * (n // 2) for t, s, n in zip(layer.translate, layer.scale, layer.data.shape)]
        viewer.dims.set_point(range(3), mid)
        viewer.reset_view(layers=shown)


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
        from napari_bcdi_dl._sample_data import AXIS_LABELS, SAMPLE_GEOMETRY, _grids
        from napari_bcdi_dl.core.simulate import simulate_pattern

        p = simulate_pattern(size=args.size, seed=3, phase_range=2.0, gap="line:2", max_counts=1e6)
        grid, voxel = _grids(p.intensity.shape)
        viewer.add_image(p.intensity, name="particle", colormap="magma", gamma=0.2, **grid,
                         metadata={"bcdi": {"kind": "intensity", "geometry": SAMPLE_GEOMETRY,
                                            "voxel_size_nm": voxel}})
        viewer.add_labels(p.mask, name="particle gap mask", opacity=0.5, scale=grid["scale"], units="1/nm",
                          axis_labels=AXIS_LABELS)
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
    _save(viewer, "dl_phase")

    # 4. Phasing (conventional)
    ph.select_layers(src, dm.mask_layer.name)
    ph.recipe_edit.setText(args.recipe)
    ph.live_spin.setValue(20)
    _raise(ph)
    job = ph.start()
    live = f"{src} conventional live phase"
    t0 = time.perf_counter()  # the live view: the running object, while the phasing goes
    while not job.done and not any(layer.name == live for layer in viewer.layers) and time.perf_counter() - t0 < 60:
        _process(0.05)
    saved = False
    if not job.done:
        _only(viewer, {live})
        _process(0.6)
        _save(viewer, "phasing")
        saved = True
    _wait(job, f"phasing ({args.recipe})")
    if not saved:  # the run was over before its first live update: show its result
        _only(viewer, {f"{src} conventional phase"})
        _save(viewer, "phasing")

    # 5. Results: post-process both, show the DL result's isosurface coloured by strain in 3D
    res.select_source(f"{src} conventional modulus")
    res.name_edit.setText("conventional")
    _wait(res.process(), "post-process conventional")
    res.select_source(f"{src} DL modulus")
    res.name_edit.setText("DL")
    viewer.dims.ndisplay = 3
    _wait(res.process(), "post-process DL")
    _raise(res)
    _only(viewer, {"DL surface"})
    res.display.look_at_crystal()
    _process(1.0)
    _save(viewer, "results")

    # 6. Slices through the crystal's centre of mass (2D, scale bar), and the dock's slice panel
    viewer.dims.ndisplay = 2
    _only(viewer, {"DL strain"})
    res.display.look_at_crystal()
    _scroll_to(res.display.slices)
    _process(1.0)
    _save(viewer, "slices")

    # 7. The one-page report of the DL result
    report = OUT / "guide_report_full.png"
    _wait(res.report(report), "report")
    _shrink(report, OUT / "guide_report.png")
    report.unlink()

    # 8. Compare conventional and DL: coloured isosurfaces side by side (grid, one camera)
    _wait(res.compare([f"{src} DL modulus", f"{src} conventional modulus"]), "compare")
    _raise(res)
    _scroll_to(res.compare_panel.table)
    _process(1.0)
    _save(viewer, "compare")

    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
