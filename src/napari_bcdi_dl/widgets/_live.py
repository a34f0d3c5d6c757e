"""Live view of a running reconstruction, shared by the Phasing and DL phase docks.

The phasing engine calls a *snapshot* callback every N iterations in the worker thread
(``core.phasing.runs.SnapshotFn``: iteration, centred object copy, support, LLK history). :class:`LiveView`
makes that callback: in the worker it drops a snapshot unless the previous one has been shown and at least
:data:`MIN_INTERVAL_S` has passed (at most 4 updates a second, never a queue of them) and prepares the picture
there (:func:`live_panel`: three orthogonal slices through the crystal's centre of mass, modulus in gray over
phase in twilight, as RGBA bytes), and hands it to the main thread through a queued Qt signal. On the main
thread it only draws that picture in the dock (:class:`LivePreview`, a QImage: ~1 ms) and redraws the small
:class:`LLKPlot`.

Why not napari layers: measured on the 2-core machine (Xvfb, llvmpipe, 64³), adding an Image layer blocks
the main thread 170-250 ms, removing one 330 ms, and replacing a volume's data costs 13 ms plus a canvas
repaint (65 ms in 2D; 1.5-5 s in 3D with a training job on the cores): a live view made of layers cannot keep
the event loop under the 100 ms bound; a picture in the dock can. The run's result layers appear when it
ends, as without the live view.

Counters ``snapshots`` (callbacks received in the worker), ``updates`` (pictures shown), ``update_times`` and
``show_seconds`` (main-thread time of each) let a test check the throttling.
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


log = logging.getLogger(__name__)

#: at most one live update every this many seconds (≤ 4 per second)
MIN_INTERVAL_S = 0.25
#: volumes with more voxels than this are shown one voxel in two per axis while running
FULL_RES_VOXELS = 64**3


def display_phase(obj: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Phase of ``obj`` inside ``support`` (0 outside), offset so that the crystal's mean phase is 0 (float32).

    The Phasing and DL phase docks show every object phase this way (``dl_phase`` re-exports it).
    """
    s = np.asarray(support) != 0
    ref = np.sum(obj[s]) if s.any() else np.sum(obj)
    offset = np.exp(-1j * np.angle(ref)) if ref != 0 else 1.0
    return np.where(s, np.angle(obj * offset), 0).astype(np.float32)


def _twilight_lut() -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps["twilight"](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)


_LUT: list = []


def live_panel(obj: np.ndarray, support: np.ndarray, *, gap: int = 2) -> np.ndarray:
    """RGBA (uint8) picture of a running object: its three orthogonal slices through the centre of mass of
    the modulus inside the support, modulus (gray, 0 to max) above phase (:func:`display_phase`, twilight over
    ±π); volumes above 64³ are shown one voxel in two per axis."""
    stride = 2 if obj.size > FULL_RES_VOXELS else 1
    if stride > 1:
        obj, support = obj[::stride, ::stride, ::stride], support[::stride, ::stride, ::stride]
    mod = np.abs(obj).astype(np.float32)
    phase = display_phase(obj, support)
    weight = mod * (np.asarray(support) != 0) if np.any(support) else mod
    total = float(weight.sum())
    if total > 0:
        centre = [int(round(float((weight.sum(axis=tuple(j for j in range(3) if j != i)) * np.arange(n)).sum())
                            / total)) for i, n in enumerate(weight.shape)]
    else:
        centre = [n // 2 for n in weight.shape]
    cuts = [(mod[centre[0]], phase[centre[0]]), (mod[:, centre[1]], phase[:, centre[1]]),
            (mod[:, :, centre[2]], phase[:, :, centre[2]])]
    if not _LUT:
        _LUT.append(_twilight_lut())
    lut = _LUT[0]
    top = float(mod.max()) or 1.0
    h = max(max(m.shape[0] for m, _ in cuts), 1)
    w = sum(m.shape[1] for m, _ in cuts) + gap * 2
    out = np.zeros((2 * h + gap, w, 4), np.uint8)
    out[..., 3] = 255
    x = 0
    for m, p in cuts:
        g = np.clip(m / top * 255, 0, 255).astype(np.uint8)
        out[: m.shape[0], x: x + m.shape[1], :3] = g[..., None]
        idx = np.clip(((p + np.pi) / (2 * np.pi) * 255).round(), 0, 255).astype(np.uint8)
        out[h + gap: h + gap + p.shape[0], x: x + p.shape[1], :3] = lut[idx]
        x += m.shape[1] + gap
    return out


class LivePreview(QWidget):
    """The dock's picture of the running object (:func:`live_panel`), scaled to the dock's width."""

    def __init__(self, height: int = 120) -> None:
        super().__init__()
        self.rgba: np.ndarray | None = None
        self._image = None
        self.caption = ""
        self.setMinimumHeight(height)
        self.setToolTip("live view: slices through the running object (top: modulus, bottom: phase, ±π)")

    def set_image(self, rgba: np.ndarray | None, caption: str = "") -> None:
        """Show ``rgba`` ((h, w, 4) uint8), or nothing."""
        from qtpy.QtGui import QImage

        self.rgba = None if rgba is None else np.ascontiguousarray(rgba)
        self.caption = caption
        if self.rgba is None:
            self._image = None
        else:
            h, w = self.rgba.shape[:2]
            self._image = QImage(self.rgba.data, w, h, 4 * w, QImage.Format_RGBA8888)
        self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        try:
            p.fillRect(0, 0, self.width(), self.height(), QColor(38, 41, 48))
            if self._image is None:
                p.setPen(QColor(200, 200, 200))
                p.drawText(6, self.height() // 2 + 4, "live view: waiting for the first iterations")
                return
            iw, ih = self._image.width(), self._image.height()
            k = max(1, min((self.width() - 4) // max(iw, 1), (self.height() - 16) // max(ih, 1)))
            from qtpy.QtCore import QRect

            p.drawImage(QRect(2, 14, iw * k, ih * k), self._image)
            p.setPen(QColor(220, 220, 220))
            p.drawText(4, 11, self.caption)
        finally:
            p.end()


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
    """The live picture and LLK plot of one dock (see the module docstring).

    Parameters
    ----------
    viewer : napari.Viewer
        The dock's viewer (kept for the docks; the live view adds no layer).
    plot : LLKPlot
        The dock's plot.
    preview : LivePreview, optional
        The dock's picture (default: a new one, :attr:`preview`, for the dock to place).
    """

    _arrived = Signal(object)

    def __init__(self, viewer: Any, plot: LLKPlot, preview: LivePreview | None = None) -> None:
        super().__init__()
        self.viewer = viewer
        self.plot = plot
        self.preview = preview if preview is not None else LivePreview()
        self.snapshots = 0  # snapshots received in the worker (any run)
        self.updates = 0  # live updates shown on the main thread
        self.update_times: list[float] = []  # time.monotonic() of each, for the throttling test
        self.show_seconds: list[float] = []  # main-thread time of each update
        self._run = 0  # the current run's number; snapshots of older runs are dropped
        self._active = False
        self._busy = threading.Event()  # set while a snapshot is on its way to the main thread
        self._last = 0.0
        self._prefix = ""
        self._arrived.connect(self._show, Qt.QueuedConnection)

    def start(self, prefix: str, grid: dict | None = None) -> Callable[[int, np.ndarray, np.ndarray, list], None]:
        """Begin a run (``prefix`` names it in the picture's caption); returns the snapshot callback to give the
        phasing (it runs in the worker thread). ``grid`` is accepted for the docks' symmetry and unused."""
        self.finish()
        self._run += 1
        run = self._run
        self._active = True
        self._prefix = prefix
        self._busy.clear()
        self._last = 0.0
        self.plot.clear()
        self.preview.set_image(None)

        def snapshot(iteration: int, obj: np.ndarray, support: np.ndarray, history: list) -> None:
            self.snapshots += 1
            now = time.monotonic()
            if self._busy.is_set() or now - self._last < MIN_INTERVAL_S or run != self._run:
                return
            self._busy.set()
            self._last = now
            try:
                rgba = live_panel(obj, support)
            except Exception:  # a display problem must not stop the phasing
                log.exception("live view: could not prepare a snapshot")
                self._busy.clear()
                return
            self._arrived.emit((run, int(iteration), rgba, list(history)))

        return snapshot

    def _show(self, payload: tuple) -> None:
        run, iteration, rgba, history = payload
        t0 = time.perf_counter()
        try:
            if run != self._run or not self._active:
                return
            self.preview.set_image(rgba, f"{self._prefix}: iteration {iteration}")
            self.plot.set_history(history)
            self.updates += 1
            self.update_times.append(time.monotonic())
            self.show_seconds.append(time.perf_counter() - t0)
        except Exception:  # the dock is closing: the run goes on
            log.debug("live view update failed", exc_info=True)
        finally:
            self._last = time.monotonic()  # the interval counts from the end of the main thread's work
            self._busy.clear()

    def finish(self) -> None:
        """End the run: drop its later snapshots (the picture and the plot keep the last state)."""
        self._active = False
        self._run += 1
        self._busy.clear()
