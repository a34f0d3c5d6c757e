"""Live view of a running reconstruction, shared by the Phasing and DL phase docks.

The phasing engine calls a *snapshot* callback every N iterations in the worker thread
(``core.phasing.runs.SnapshotFn``: iteration, centred object copy, support, LLK history). :class:`LiveView`
makes that callback: in the worker it drops a snapshot unless the previous one has been shown and at least
:data:`MIN_INTERVAL_S` has passed (at most 4 updates a second, never a queue of them), prepares the display
arrays there (modulus and phase inside the support, float32; volumes above 64³ are shown one voxel in two
per axis, with twice the scale), and hands them to the main thread through a queued Qt signal. On the main
thread it only assigns them to two layers, ``"<prefix> live modulus"`` and ``"<prefix> live phase"`` (created
one per update: adding a napari layer costs the main thread ~0.1-0.3 s, replacing its data ~10 ms), and
redraws the small :class:`LLKPlot`. When the run ends (done, failed or cancelled) the live layers are removed:
the run's real result layers (or none, after a cancel) are what stays.

Counters ``snapshots`` (callbacks received in the worker), ``updates`` (layer updates shown) and
``update_times`` let a test check the throttling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import QWidget

from ._layers import find_layer

log = logging.getLogger(__name__)

#: at most one live update every this many seconds (≤ 4 per second)
MIN_INTERVAL_S = 0.25
#: volumes with more voxels than this are shown one voxel in two per axis while running
FULL_RES_VOXELS = 64**3
LIVE_KIND = "live"


def display_phase(obj: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Phase of ``obj`` inside ``support`` (0 outside), offset so that the crystal's mean phase is 0 (float32).

    The Phasing and DL phase docks show every object phase this way (``dl_phase`` re-exports it).
    """
    s = np.asarray(support) != 0
    ref = np.sum(obj[s]) if s.any() else np.sum(obj)
    offset = np.exp(-1j * np.angle(ref)) if ref != 0 else 1.0
    return np.where(s, np.angle(obj * offset), 0).astype(np.float32)


def live_arrays(obj: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(modulus, phase, stride)`` to show for a snapshot: float32, one voxel in ``stride`` per axis."""
    stride = 2 if obj.size > FULL_RES_VOXELS else 1
    if stride > 1:
        obj, support = obj[::stride, ::stride, ::stride], support[::stride, ::stride, ::stride]
    return np.abs(obj).astype(np.float32), display_phase(obj, support), stride


# -------------------------------------------------------------------------------------------- LLK plot
class LLKPlot(QWidget):
    """A small line plot of the LLK (blue) and free LLK (red) against the iteration, log scale, QPainter-drawn."""

    def __init__(self, height: int = 70) -> None:
        super().__init__()
        self.history: list = []
        self.setMinimumHeight(height)
        self.setMaximumHeight(height + 30)
        self.setToolTip("log-likelihood of the running reconstruction (blue: LLK, red: free LLK; log scale)")

    def set_history(self, history: Sequence[dict]) -> None:
        """Plot these records (dicts with ``iteration``, ``llk``, ``llk_free``)."""
        self.history = [h for h in history if isinstance(h, dict) and h.get("iteration") is not None]
        self.update()

    def clear(self) -> None:
        self.set_history([])

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(iterations, log10 values) of ``key`` where positive and finite."""
        it = np.array([float(h["iteration"]) for h in self.history])
        v = np.array([np.nan if h.get(key) is None else float(h[key]) for h in self.history])
        ok = np.isfinite(v) & (v > 0)
        return it[ok], np.log10(v[ok])

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        try:
            w, h = self.width(), self.height()
            p.fillRect(0, 0, w, h, QColor(38, 41, 48))
            series = [(self.series(k), c) for k, c in (("llk", QColor(90, 150, 230)),
                                                       ("llk_free", QColor(230, 90, 90)))]
            xs = np.concatenate([s[0][0] for s in series])
            ys = np.concatenate([s[0][1] for s in series])
            p.setPen(QColor(200, 200, 200))
            if xs.size < 2:
                p.drawText(6, h // 2 + 4, "LLK: waiting for the first records")
                return
            x0, x1 = float(xs.min()), float(xs.max()) or 1.0
            y0, y1 = float(ys.min()), float(ys.max())
            if y1 - y0 < 1e-9:
                y0, y1 = y0 - 0.5, y1 + 0.5
            left, right, top, bottom = 4, w - 4, 14, h - 4

            def pt(x, y):
                return (left + (x - x0) / max(x1 - x0, 1e-9) * (right - left),
                        bottom - (y - y0) / (y1 - y0) * (bottom - top))

            for (it, ly), colour in series:
                pen = QPen(colour)
                pen.setWidth(2)
                p.setPen(pen)
                for a, b in zip(range(len(it) - 1), range(1, len(it))):
                    xa, ya = pt(it[a], ly[a])
                    xb, yb = pt(it[b], ly[b])
                    p.drawLine(int(xa), int(ya), int(xb), int(yb))
            last = self.history[-1]
            p.setPen(QColor(220, 220, 220))
            llk = last.get("llk")
            free = last.get("llk_free")
            text = f"it {int(last['iteration'])}: LLK {llk:.4g}" if llk is not None else f"it {last['iteration']}"
            if free is not None:
                text += f", free {free:.4g}"
            p.drawText(left + 2, 11, text)
        finally:
            p.end()


# ------------------------------------------------------------------------------------------- live view
class LiveView(QObject):
    """The live layers and LLK plot of one dock (see the module docstring).

    Parameters
    ----------
    viewer : napari.Viewer
        Where the live layers go.
    plot : LLKPlot
        The dock's plot.
    """

    _arrived = Signal(object)

    def __init__(self, viewer: Any, plot: LLKPlot) -> None:
        super().__init__()
        self.viewer = viewer
        self.plot = plot
        self.snapshots = 0  # snapshots received in the worker (any run)
        self.updates = 0  # live updates shown on the main thread
        self.update_times: list[float] = []  # time.monotonic() of each, for the throttling test
        self.show_seconds: list[float] = []  # main-thread time of each update
        self._run = 0  # the current run's number; snapshots of older runs are dropped
        self._active = False
        self._busy = threading.Event()  # set while a snapshot is on its way to the main thread
        self._last = 0.0
        self._prefix = ""
        self._grid: dict = {}
        self._arrived.connect(self._show, Qt.QueuedConnection)

    def names(self) -> tuple[str, str]:
        """The names of the live modulus and phase layers of the current run."""
        return f"{self._prefix} live modulus", f"{self._prefix} live phase"

    def start(self, prefix: str, grid: dict) -> Callable[[int, np.ndarray, np.ndarray, list], None]:
        """Begin a run whose layers are called ``"<prefix> live ..."`` with ``grid`` (``scale``/``units``);
        returns the snapshot callback to give the phasing (it runs in the worker thread)."""
        self.finish()
        self._run += 1
        run = self._run
        self._active = True
        self._prefix = prefix
        self._grid = dict(grid)
        self._busy.clear()
        self._last = 0.0
        self.plot.clear()

        def snapshot(iteration: int, obj: np.ndarray, support: np.ndarray, history: list) -> None:
            self.snapshots += 1
            now = time.monotonic()
            if self._busy.is_set() or now - self._last < MIN_INTERVAL_S or run != self._run:
                return
            self._busy.set()
            self._last = now
            try:
                mod, phase, stride = live_arrays(obj, support)
            except Exception:  # a display problem must not stop the phasing
                log.exception("live view: could not prepare a snapshot")
                self._busy.clear()
                return
            self._arrived.emit((run, int(iteration), mod, phase, stride, list(history)))

        return snapshot

    def _show(self, payload: tuple) -> None:
        run, _iteration, mod, phase, stride, history = payload
        t0 = time.perf_counter()
        try:
            if run != self._run or not self._active:
                return
            self._put(mod, phase, stride)
            self.plot.set_history(history)
            self.updates += 1
            self.update_times.append(time.monotonic())
            self.show_seconds.append(time.perf_counter() - t0)
        except Exception:  # the viewer is closing, a layer was renamed...: the run goes on
            log.debug("live view update failed", exc_info=True)
        finally:
            self._last = time.monotonic()  # the interval counts from the end of the main thread's work
            self._busy.clear()

    def _put(self, mod: np.ndarray, phase: np.ndarray, stride: int) -> None:
        """Update the live layers; at most one is created per update (creating a napari layer costs the main
        thread far more than replacing its data: its controls, its vispy visual, the layer list)."""
        scale = self._grid.get("scale") or (1.0, 1.0, 1.0)
        grid = {**self._grid, "scale": tuple(float(s) * stride for s in scale)}
        top = float(mod.max()) or 1.0
        name_mod, name_phase = self.names()
        layer = find_layer(self.viewer, name_mod)
        if layer is None:
            self.viewer.add_image(mod, name=name_mod, colormap="gray", contrast_limits=(0.0, top),
                                  metadata={"bcdi": {"kind": LIVE_KIND}}, **grid)
            return
        layer.data = mod
        layer.contrast_limits = (0.0, top)
        layer = find_layer(self.viewer, name_phase)
        if layer is None:
            self.viewer.add_image(phase, name=name_phase, colormap="twilight", contrast_limits=(-np.pi, np.pi),
                                  metadata={"bcdi": {"kind": LIVE_KIND}}, **grid)
        else:
            layer.data = phase

    def finish(self) -> None:
        """End the run: drop its later snapshots and remove its live layers (the plot keeps the last curve)."""
        self._active = False
        self._run += 1
        for name in self.names() if self._prefix else ():
            layer = find_layer(self.viewer, name)
            if layer is not None:
                try:
                    self.viewer.layers.remove(layer)
                except Exception:  # the viewer is closing
                    log.debug("could not remove %s", name, exc_info=True)
        self._busy.clear()
