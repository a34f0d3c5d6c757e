"""The *Compare* box of the Results widget: reconstructions side by side, registered to the first.

Tick two or more reconstructions (the first ticked is the reference) and *Compare*. In the worker
(``_results_jobs.compare_sources``) each is registered onto the reference (twin, translation, global phase:
``core.metrics.register_to``), measured (LLK, free LLK, χ², PRTF resolution, sharpness, error and phase RMSE
vs the reference: ``core.metrics.fit_metrics``) and post-processed on the reference's grid, and its modulus
isosurface is coloured by the Display box's *Colour by* field with colour limits shared by all (symmetric
about 0). The panel then shows, in napari's grid mode and 3D (one camera for all tiles: the views turn and
zoom together), only:

* ``"compare <name> surface"`` — the coloured isosurface of each reconstruction;
* ``"compare <name> phase"`` — its registered phase (±π, linked contrast) as a plane through the reference's
  centre of mass (``depiction="plane"``; in 2D the usual slice);
* ``"compare <ref> − <name> phase diff"`` — the phase difference inside the common support, as a plane too;

points the camera at the crystal, and fills the metrics table. The intensity of a reconstruction is its
``data_layer``, or the one chosen under *Intensity*.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
)

from ..core.errors import BCDIError
from ._camera import OBLIQUE_ANGLES, look_at
from ._layers import MASK_SUFFIX, bcdi_meta, find_layer, set_combo_items, viewer_grid
from ._results_display import SURFACE_CMAPS, surface_kwargs, surface_title
from ._results_jobs import Source, compare_sources
from ._results_view import TABLE_COLUMNS, table_cells
from ._worker import Job

log = logging.getLogger(__name__)

AUTO = "(auto)"
PHASE_CMAP = "twilight"
DIFF_CMAP = "coolwarm"


class ComparePanel(QGroupBox):
    """The *Compare* box of the Results widget.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose layers are compared and where the comparison layers go.
    source : callable
        ``source(name) -> Source``: private copies of a listed reconstruction.
    entry : callable
        ``entry(name) -> str``: the listed name of a reconstruction given by any of its names (raises
        ``BCDIError`` for an unknown one).
    start : callable
        ``start(func, *args, desc=..., on_done=...) -> Job | None``: the widget's job slot.
    put : callable
        ``put(name, data, kind, **layer_kwargs) -> layer``: the widget's way to add its own layers.
    put_surface : callable
        ``put_surface(name, (vertices, faces, values), kind, **layer_kwargs) -> layer``: the same for surfaces.
    display : DisplayPanel
        The Display box: its *Colour by* field and *Iso threshold*, and its colour bar.
    status : QLabel
        Where the summary line goes.
    """

    def __init__(self, viewer: Any, *, source: Callable[[str], Source], entry: Callable[[str], str],
                 start: Callable[..., Job | None], put: Callable[..., Any], put_surface: Callable[..., Any],
                 display: Any, status: Any) -> None:
        super().__init__("Compare (the first ticked is the reference)")
        self.viewer = viewer
        self._source, self._entry, self._start, self._put, self._status = source, entry, start, put, status
        self._put_surface, self._display = put_surface, display
        self.comparison: dict | None = None
        self.compare_list = QListWidget()
        self.compare_list.setSelectionMode(QAbstractItemView.NoSelection)
        self.compare_list.setMaximumHeight(110)
        self.intensity_combo = QComboBox()
        self.intensity_combo.setToolTip("diffraction data for χ², LLK and PRTF (auto: the reconstruction's own)")
        self.compare_button = QPushButton("Compare")
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        form = QFormLayout(self)
        form.addRow(self.compare_list)
        form.addRow("Intensity", self.intensity_combo)
        form.addRow(self.compare_button)
        form.addRow(self.table)

    # --- lists ------------------------------------------------------------------------------------
    def refresh(self, names: Sequence[str]) -> None:
        """List the reconstructions ``names`` (ticks kept) and the viewer's intensity layers."""
        from napari.layers import Image

        checked = set(self.checked_names())
        self.compare_list.clear()
        for n in names:
            item = QListWidgetItem(n)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if n in checked else Qt.Unchecked)
            self.compare_list.addItem(item)
        set_combo_items(self.intensity_combo, [AUTO] + [
            lay.name for lay in self.viewer.layers
            if isinstance(lay, Image) and bcdi_meta(lay).get("kind") == "intensity"
            and getattr(lay.data, "ndim", 0) == 3])

    def checked_names(self) -> list[str]:
        """The ticked reconstructions, in list order (the first is the reference)."""
        return [self.compare_list.item(i).text() for i in range(self.compare_list.count())
                if self.compare_list.item(i).checkState() == Qt.Checked]

    def set_checked(self, names: Sequence[str]) -> None:
        """Tick exactly ``names`` (listed names or any layer of a reconstruction), in that order."""
        names = [self._entry(n) for n in names]
        items = [self.compare_list.takeItem(0) for _ in range(self.compare_list.count())]
        items.sort(key=lambda it: names.index(it.text()) if it.text() in names else len(names))
        for it in items:
            it.setCheckState(Qt.Checked if it.text() in names else Qt.Unchecked)
            self.compare_list.addItem(it)

    # --- comparison ---------------------------------------------------------------------------------
    def compare(self, names: Sequence[str] | None = None) -> Job | None:
        """Register the ticked reconstructions onto the first, show them in grid mode, fill the table."""
        if names is not None:
            self.set_checked(names)
        names = self.checked_names()
        if len(names) < 2:
            raise BCDIError("tick at least two reconstructions in the Compare list")
        sources = [self._source(n) for n in names]
        chosen = self.intensity_combo.currentText()
        if chosen and chosen != AUTO:
            layer = find_layer(self.viewer, chosen)
            if layer is not None:
                data = np.array(layer.data, np.float32)
                mask_layer = find_layer(self.viewer, chosen + MASK_SUFFIX)
                mask = None if mask_layer is None else (np.asarray(mask_layer.data) != 0).astype(np.uint8)
                for s in sources:
                    s.intensity, s.mask = data, mask
        return self._start(compare_sources, sources, field=self._display.field(),
                           threshold=self._display.threshold(), desc=f"compare {len(sources)} reconstructions",
                           on_done=lambda out: self._show(sources, out))

    def _show(self, sources: list, out: dict) -> None:
        self.comparison = out
        ref = sources[0]
        ref_sup = out["supports"][0] != 0
        centre = np.angle(np.sum(out["aligned"][0][ref_sup])) if ref_sup.any() else 0.0
        com = tuple(float(c) for c in out["centre"])
        plane = {"position": com, "normal": (1.0, 0.0, 0.0)}
        surfaces, planes = [], []
        for src, surf in zip(sources, out["surfaces"]):
            surfaces.append(self._put_surface(f"compare {src.name} surface", surf.layer_data(), "compare_surface",
                                              metadata={"bcdi": {"origin": src.origin, "field": surf.field}},
                                              **surface_kwargs(surf)))
        for src, obj, sup, diff in zip(sources, out["aligned"], out["supports"], out["differences"]):
            scale = tuple(float(v) for v in (src.voxel_size or ref.voxel_size or (1.0, 1.0, 1.0)))
            ph = np.where(sup != 0, np.angle(obj * np.exp(-1j * centre)), np.nan).astype(np.float32)
            planes.append(self._put(f"compare {src.name} phase", ph, "compare_phase", colormap=PHASE_CMAP,
                                    contrast_limits=(-np.pi, np.pi), scale=scale, units="nm",
                                    depiction="plane", plane=plane, metadata={"bcdi": {"origin": src.origin}}))
            if diff is not None:
                planes.append(self._put(f"compare {ref.name} − {src.name} phase diff", diff, "compare_diff",
                                        colormap=DIFF_CMAP, contrast_limits=(-np.pi / 2, np.pi / 2), scale=scale,
                                        units="nm", depiction="plane", plane=plane,
                                        metadata={"bcdi": {"origin": src.origin}}))
        for lay in planes:  # an updated layer keeps its plane: move it to this centre of mass
            try:
                lay.plane.position = com
            except Exception:
                log.debug("could not move the plane of %s", lay.name, exc_info=True)
        phases = [lay for lay in planes if bcdi_meta(lay).get("kind") == "compare_phase"]
        try:
            from napari.experimental import link_layers

            link_layers(phases, ("contrast_limits", "gamma"))
        except Exception:
            log.debug("could not link the comparison layers", exc_info=True)
        shown = {a.name for a in surfaces + planes}  # by name: a docked plugin widget sees a proxy viewer
        for lay in self.viewer.layers:
            lay.visible = lay.name in shown
        viewer_grid(self.viewer).enabled = True
        self.viewer.dims.ndisplay = 3
        first = out["surfaces"][0]
        self._display.colour_bar.set_scale(SURFACE_CMAPS.get(first.field, "coolwarm"), first.limits,
                                           surface_title(first))
        vs = out["voxel_sizes"][0]
        try:
            look_at(self.viewer, [c * v for c, v in zip(com, vs)], [e * v for e, v in zip(out["extent_voxels"], vs)],
                    angles=OBLIQUE_ANGLES, fill=0.45)
        except Exception:  # the view is a convenience
            log.debug("could not point the view at the crystal", exc_info=True)
        self._fill_table(out["rows"])
        self._status.setText(f"compared {len(sources)} reconstructions to '{ref.name}' (grid mode, 3D; one "
                             "camera for all)")

    def _fill_table(self, rows: list) -> None:
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(table_cells(row)):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
