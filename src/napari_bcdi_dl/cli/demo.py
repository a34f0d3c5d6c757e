"""``bcdi-dl demo``: napari with every widget of the plugin docked and sample data loaded.

The widgets are those of the npe2 manifest (``napari.yaml``), so a widget added there appears here
without touching this file. The data are the sample ``strained_particle_with_gap``; when it cannot be
made, the measured pattern ``cdinn_exp_crop64.npz`` of a development checkout (``../shared/data`` or
``$BCDI_SHARED_DATA``), else a tiny pattern computed here (32³, a strained cube with a gap).
:func:`open_demo` does everything but start the event loop (tests call it with their own viewer).

First impression (:func:`tidy_docks`, :func:`oblique_3d`): the docks are tabbed under their short names,
tab titles are never elided (and "Data & mask" keeps its "&"), the first step's dock (*Data & mask*) is the
one in front, the rocking-axis slider is labelled (the sample's layers carry the axis labels), and the 3D
view starts at an oblique angle rather than looking straight down the rocking axis.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np

from ..core.errors import BCDIError

log = logging.getLogger(__name__)

PLUGIN = "napari-bcdi-dl"
SAMPLE = "strained_particle_with_gap"
REAL_PATTERN = "cdinn_exp_crop64.npz"
TINY_NAME = "tiny built-in pattern"
AXIS_LABELS = ("rocking", "detector row", "detector col")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="open napari with the plugin's widgets docked and sample data loaded",
        description="Open napari with every napari-bcdi-dl widget docked and the sample data "
                    f"'{SAMPLE}' loaded (a simulated strained particle with a detector gap).",
    )
    p.add_argument("--no-sample", action="store_true", help="dock the widgets but load no data")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _check_display()
    import napari

    viewer = napari.Viewer(title="napari-bcdi-dl demo")
    opened = open_demo(viewer, sample=not args.no_sample)
    if opened["source"]:
        print(f"bcdi-dl demo: loaded {opened['source']}", file=sys.stderr)
    napari.run()
    return 0


def _check_display() -> None:
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
    ):
        raise BCDIError("no display to open napari on (DISPLAY is not set): run it on a desktop, "
                        "through 'ssh -X', or under 'xvfb-run -a bcdi-dl demo'")


def widget_names() -> list[str]:
    """Display names of the plugin's widgets, in manifest order."""
    from npe2 import PluginManager

    pm = PluginManager.instance()
    try:
        manifest = pm.get_manifest(PLUGIN)
    except KeyError:  # a fresh manager (outside napari) has not looked at the entry points yet
        pm.discover()
        manifest = pm.get_manifest(PLUGIN)
    return [w.display_name for w in (manifest.contributions.widgets or [])]


def open_demo(viewer, *, sample: bool = True, sample_key: str = SAMPLE,
              real_pattern: Path | None = None) -> dict:
    """Dock every plugin widget in ``viewer`` and load the demo data (unless ``sample=False``).

    Returns ``{"widgets": {display name: widget}, "layers": [new layers], "source": what was loaded}``.
    A widget that fails to build is reported as a notification and skipped; the rest still open.
    """
    from napari.utils.notifications import show_error

    widgets = {}
    for name in widget_names():
        try:
            _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=bool(widgets))
        except Exception as err:  # one broken widget must not keep the others out
            log.exception("could not dock %s", name)
            show_error(f"bcdi-dl demo: the '{name}' widget could not be opened: {type(err).__name__}: {err}")
            continue
        widgets[name] = widget
    layers: list = []
    source = None
    if sample:
        layers, source = load_demo_data(viewer, sample_key=sample_key, real_pattern=real_pattern)
    try:
        tidy_docks(viewer, widgets)
        oblique_3d(viewer)
    except Exception:  # cosmetics must never keep the demo from opening
        log.debug("could not tidy the docks", exc_info=True)
    return {"widgets": widgets, "layers": layers, "source": source}


def _dock_of(widget):
    from qtpy.QtWidgets import QDockWidget

    w = widget
    while w is not None and not isinstance(w, QDockWidget):
        w = w.parentWidget()
    return w


def tidy_docks(viewer, widgets: dict) -> None:
    """Tab titles that read: the widget names (``&`` escaped, never elided); the first dock in front."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication, QTabBar

    docks = [(name, _dock_of(w)) for name, w in widgets.items()]
    for name, dock in docks:
        if dock is not None:
            dock.setWindowTitle(name.replace("&", "&&"))  # a tab title treats "&" as a shortcut marker
    QApplication.processEvents()
    for bar in viewer.window._qt_window.findChildren(QTabBar):
        bar.setElideMode(Qt.ElideNone)
        bar.setUsesScrollButtons(True)
        bar.setExpanding(False)
    if docks and docks[0][1] is not None:
        docks[0][1].show()
        docks[0][1].raise_()


def oblique_3d(viewer, angles=None) -> None:
    """Whenever the view goes 3D with the camera straight along an axis (napari's default), turn it to an
    oblique angle (``widgets._layers.OBLIQUE_ANGLES``)."""
    from ..widgets._camera import OBLIQUE_ANGLES, viewer_camera

    angles = tuple(OBLIQUE_ANGLES if angles is None else angles)

    def on_ndisplay(event=None) -> None:
        cam = viewer_camera(viewer)
        if viewer.dims.ndisplay == 3 and all(abs(a) < 1e-9 for a in cam.angles):
            cam.angles = angles

    viewer.dims.events.ndisplay.connect(on_ndisplay)
    on_ndisplay()


def load_demo_data(viewer, *, sample_key: str = SAMPLE,
                   real_pattern: Path | None = None) -> tuple[list, str]:
    """Open the sample, else the measured pattern, else the tiny built-in pattern; return (layers, source)."""
    try:
        layers = viewer.open_sample(PLUGIN, sample_key)
        if layers:
            return list(layers), f"sample '{sample_key}'"
    except Exception as err:  # noqa: BLE001 - any failure: fall back to other data
        log.warning("sample %s unavailable (%s: %s); falling back", sample_key, type(err).__name__, err)
    path = real_pattern if real_pattern is not None else find_real_pattern()
    if path is not None and Path(path).is_file():
        try:
            layers = viewer.open(str(path), plugin=PLUGIN)
            if layers and any(getattr(layer, "data", None) is not None for layer in layers):
                return list(layers), str(path)
        except Exception as err:  # noqa: BLE001 - the tiny pattern below always works
            log.warning("could not open %s (%s: %s)", path, type(err).__name__, err)
    data = tiny_pattern()
    layer = viewer.add_image(data, name=TINY_NAME, colormap="magma", gamma=0.2,
                             contrast_limits=(0.0, float(data.max())), rendering="mip", axis_labels=AXIS_LABELS,
                             metadata={"bcdi": {"kind": "intensity", "simulated": True}})
    return [layer], TINY_NAME


def find_real_pattern() -> Path | None:
    """``cdinn_exp_crop64.npz`` beside a development checkout, if there is one."""
    candidates = []
    if os.environ.get("BCDI_SHARED_DATA"):
        candidates.append(Path(os.environ["BCDI_SHARED_DATA"]))
    here = Path(__file__).resolve()
    candidates += [here.parents[3].parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for folder in candidates:
        if (folder / REAL_PATTERN).is_file():
            return folder / REAL_PATTERN
    return None


def tiny_pattern(size: int = 32, seed: int = 0) -> np.ndarray:
    """Photon counts of a small strained cube, float32 ``(size,)*3``, with a 2-pixel detector gap.

    The object is centred, ``I = |fftshift(fftn(ifftshift(obj)))|²`` scaled to 1e5 at the peak, Poisson
    noise; rows ``size//2 + 3`` and ``+4`` are zero in every frame, like a detector gap near the peak.
    """
    rng = np.random.default_rng(seed)
    c = np.arange(size) - size // 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    half = size // 6
    inside = (np.abs(z) <= half) & (np.abs(y) <= half) & (np.abs(x) <= half)
    phase = 1.5 * np.pi * (x / half) ** 2 * inside
    obj = inside * np.exp(1j * phase)
    amp = np.abs(np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj))))
    intensity = amp**2 * (1e5 / (amp**2).max())
    counts = rng.poisson(intensity).astype(np.float32)
    counts[:, size // 2 + 3: size // 2 + 5, :] = 0
    return counts
