"""The *Display* box of the Results widget: what a post-processed reconstruction looks like.

For output name ``<name>`` (:meth:`DisplayPanel.show`, main thread, from a ``_results_jobs.Processed``
computed in the worker):

* ``"<name> modulus"`` (gray, ``rendering="iso"`` at the *Iso threshold*, hidden: the surface shows it),
  ``"<name> phase"`` (twilight, ±π, wrapped for display) and ``"<name> strain"`` (coolwarm, symmetric limits
  at the 99.5th percentile of |strain|), phase and strain NaN outside the support (napari draws NaN as
  transparent); ``scale`` = voxel size, units nm;
* ``"<name> surface"``: the modulus isosurface at the *Iso threshold* coloured by the *Colour by* field
  (strain, displacement or phase; ``core.surface``), coolwarm (phase: twilight) with limits symmetric about
  0, vertices in nm; the colour bar below names the field and its unit. Moving the slider or changing the
  field rebuilds the surface in a worker (``_results_jobs.surface_job``; requests made while one runs are
  merged into one more run), never on the main thread;
* the strain statistics and histogram, and a panel of three orthogonal slices through the crystal's centre
  of mass (modulus, phase, strain; nm, scale bars; ``core.report.slices_rgba``);
* the view: slicing point and camera centre on the centre of mass, zoom on the crystal, an oblique camera in
  3D, napari's scale bar on.

*Report…* writes the one-page report of the shown result (``core.report``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QPushButton, QSlider

from ..core.surface import FIELDS
from ._camera import OBLIQUE_ANGLES, look_at, viewer_scale_bar
from ._layers import bcdi_meta, find_layer
from ._results_jobs import Processed, surface_job
from ._results_view import ColourBar, StrainHistogram
from ._worker import Job, run_job

log = logging.getLogger(__name__)

STRAIN_CMAP = "coolwarm"
PHASE_CMAP = "twilight"
#: the colormap of a surface coloured by each field
SURFACE_CMAPS = {"strain": STRAIN_CMAP, "displacement": STRAIN_CMAP, "phase": PHASE_CMAP}
REBUILD_DELAY_MS = 120  # a slider drag rebuilds the surface once it rests this long


def surface_title(surface: Any) -> str:
    """``"strain"``, ``"displacement (nm)"``, ``"phase (rad)"``: the colour bar's title."""
    return f"{surface.field} ({surface.unit})" if surface.unit else surface.field


def surface_kwargs(surface: Any) -> dict:
    """Surface layer properties of a ``core.surface.ColouredSurface``."""
    lo, hi = surface.limits
    return {"colormap": SURFACE_CMAPS.get(surface.field, STRAIN_CMAP), "contrast_limits": (lo, hi),
            "units": "nm", "shading": "smooth"}


class DisplayPanel(QGroupBox):
    """The *Display* box (see the module docstring).

    Parameters
    ----------
    viewer : napari.Viewer
        Where the layers go.
    put : callable
        ``put(name, data, kind, **layer_kwargs)``: the widget's way to add or update its Image layers.
    put_surface : callable
        ``put_surface(name, (vertices, faces, values), kind, **layer_kwargs)``: the same for Surface layers.
    status : QLabel
        Where notes go.
    """

    def __init__(self, viewer: Any, *, put: Callable[..., Any], put_surface: Callable[..., Any], status: Any) -> None:
        super().__init__("Display")
        self.viewer = viewer
        self._put, self._put_surface, self._status = put, put_surface, status
        self.name: str | None = None
        self.processed: Processed | None = None
        self.surface_job: Job | None = None
        self._again = False
        self.iso_slider = QSlider(Qt.Horizontal)
        self.iso_slider.setRange(1, 99)
        self.iso_slider.setValue(30)
        self.iso_slider.setToolTip("isosurface threshold of the modulus, % of its maximum")
        self.iso_slider.valueChanged.connect(self._on_iso_changed)
        self.field_combo = QComboBox()
        self.field_combo.addItems(list(FIELDS))
        self.field_combo.setToolTip("the field colouring the isosurface")
        self.field_combo.currentIndexChanged.connect(lambda *_: self.request_surface())
        self.colour_bar = ColourBar()
        self.stats = QLabel("no result yet")
        self.stats.setWordWrap(True)
        self.histogram = StrainHistogram()
        self.slices = QLabel("slices through the centre of mass appear here")
        self.slices.setAlignment(Qt.AlignCenter)
        self.slices.setMinimumHeight(60)
        self.report_button = QPushButton("Report…")
        self.report_button.setToolTip("write a one-page PNG/PDF report of the result")
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REBUILD_DELAY_MS)
        self._timer.timeout.connect(self._rebuild)
        form = QFormLayout(self)
        form.addRow("Iso threshold", self.iso_slider)
        form.addRow("Colour by", self.field_combo)
        form.addRow(self.colour_bar)
        form.addRow(self.stats)
        form.addRow(self.histogram)
        form.addRow(self.slices)
        form.addRow(self.report_button)

    # --- values -----------------------------------------------------------------------------------
    def threshold(self) -> float:
        """The isosurface threshold, a fraction of the maximum modulus."""
        return self.iso_slider.value() / 100

    def field(self) -> str:
        """The field colouring the surface."""
        return self.field_combo.currentText()

    def set_field(self, field: str) -> None:
        """Colour the surface by ``field`` (strain, displacement or phase)."""
        self.field_combo.setCurrentText(field)

    # --- showing a result -----------------------------------------------------------------------------
    def show_result(self, name: str, src: Any, processed: Processed, *, look: bool = True) -> None:
        """Put the layers of a post-processed result and fill the panel (main thread)."""
        result = processed.result
        self.name, self.processed = name, processed
        s = result.support != 0
        scale = tuple(float(v) for v in result.voxel_size)
        common = {"scale": scale, "units": "nm"}
        mod = result.modulus
        top = float(mod.max()) or 1.0
        phase = np.where(s, np.angle(np.exp(1j * result.phase)), np.nan).astype(np.float32)
        strain = np.where(s, result.strain, np.nan).astype(np.float32)
        vals = result.strain[s]
        lim = float(np.percentile(np.abs(vals), 99.5)) if vals.size else 0.0
        lim = lim if lim > 0 else 1e-4
        meta = {"bcdi": {"strain_result": result, "source": src.path, "origin": src.origin}}
        self._put(f"{name} modulus", mod, "result_modulus", colormap="gray", contrast_limits=(0.0, top),
                  rendering="iso", iso_threshold=self.threshold() * top, visible=False, metadata=meta, **common)
        self._put(f"{name} phase", phase, "result_phase", colormap=PHASE_CMAP, contrast_limits=(-np.pi, np.pi),
                  metadata={"bcdi": {"origin": src.origin}}, **common)
        self._put(f"{name} strain", strain, "result_strain", colormap=STRAIN_CMAP, contrast_limits=(-lim, lim),
                  metadata={"bcdi": {"origin": src.origin}}, **common)
        self._show_surface(processed.surface)
        self.histogram.set_values(vals, lim)
        mean, std = (float(vals.mean()), float(vals.std())) if vals.size else (0.0, 0.0)
        self.stats.setText(
            f"strain in {vals.size} voxels ({result.frame} frame, voxel {', '.join(f'{v:.3g}' for v in scale)} "
            f"nm): mean {mean:.3e}, std {std:.3e}, min {float(vals.min()) if vals.size else 0:.3e}, "
            f"max {float(vals.max()) if vals.size else 0:.3e}; colour limits ±{lim:.2e}")
        self._show_slices(processed.slices)
        if look:
            self.look_at_crystal()

    def _show_surface(self, surface: Any) -> None:
        self._put_surface(f"{self.name} surface", surface.layer_data(), "result_surface",
                          metadata={"bcdi": {"field": surface.field, "unit": surface.unit,
                                             "threshold": surface.threshold}}, **surface_kwargs(surface))
        self.colour_bar.set_scale(SURFACE_CMAPS.get(surface.field, STRAIN_CMAP), surface.limits,
                                  surface_title(surface))
        if self.processed is not None:
            self.processed.surface = surface

    def _show_slices(self, rgba: np.ndarray | None) -> None:
        if rgba is None:
            return
        a = np.ascontiguousarray(rgba)
        image = QImage(a.data, a.shape[1], a.shape[0], 4 * a.shape[1], QImage.Format_RGBA8888).copy()
        self.slices.setPixmap(QPixmap.fromImage(image))
        self.slices.setMinimumSize(a.shape[1], a.shape[0])
        self.slices.setToolTip("modulus, phase and strain through the centre of mass (rows: z, y, x planes)")

    def world_centre(self) -> tuple[float, float, float] | None:
        """The crystal's centre of mass in world coordinates (nm), or None without a result."""
        if self.processed is None:
            return None
        v = self.processed.result.voxel_size
        return tuple(float(c) * float(s) for c, s in zip(self.processed.centre, v))

    def look_at_crystal(self) -> None:
        """Slicing point and camera on the crystal's centre of mass, zoomed on it, oblique in 3D, scale bar."""
        centre = self.world_centre()
        if centre is None:
            return
        try:
            look_at(self.viewer, centre, self.processed.extent, angles=OBLIQUE_ANGLES)
            viewer_scale_bar(self.viewer).visible = True
        except Exception:  # the view is a convenience: never fail a result for it
            log.debug("could not point the view at the crystal", exc_info=True)

    # --- the surface follows the slider and the field ----------------------------------------------
    def _on_iso_changed(self, _value: int) -> None:
        layer = find_layer(self.viewer, f"{self.name} modulus") if self.name else None
        if layer is not None and bcdi_meta(layer).get("kind") == "result_modulus":
            top = float(np.nanmax(layer.data)) or 1.0
            layer.iso_threshold = self.threshold() * top
        self.request_surface()

    def request_surface(self) -> None:
        """Rebuild the surface (threshold and field of the panel) in a worker, once the slider rests."""
        if self.processed is not None:
            self._timer.start()

    def _rebuild(self) -> None:
        if self.processed is None:
            return
        if self.surface_job is not None and self.surface_job.running:
            self._again = True  # one more run once this one is done, with the values of then
            return
        field, threshold, result = self.field(), self.threshold(), self.processed.result
        def done(surface, result=result) -> None:
            if self.processed is not None and self.processed.result is result:  # not a newer result's
                self._show_surface(surface)

        self.surface_job = run_job(surface_job, result, field, threshold, desc="Results: isosurface", on_done=done)
        self.surface_job.finished.connect(self._surface_finished)

    def _surface_finished(self) -> None:
        if self._again:
            self._again = False
            self._rebuild()
