"""The **Results** dock widget: post-process a reconstruction, compare several, export.

Reconstruction
    *Source* lists the viewer's reconstructions, each once under its base name ``"<name>"``: the layers
    ``"<name> modulus"`` / ``"<name> phase"`` that show one reconstruction, read through
    ``_layers.result_of``: the :class:`~napari_bcdi_dl.core.types.ReconstructionResult` the Phasing and DL
    phase docks and the reader attach (``metadata["bcdi"]["result"]``), complex Image layers, and
    ``"<name> modulus"`` + ``"<name> phase"`` pairs of other programs. The
    methods taking a reconstruction accept its base name or the name of any of its layers. *File…* reads a
    CXI/npz result (PyNX, cdiutils, this project) in a worker and adds it to the list (no layer added).
    Geometry fields (energy keV, distance m, pixel m, rocking step deg, hkl, lattice nm) and the voxel size
    (nm, used when the geometry is incomplete) are pre-filled from ``metadata["bcdi"]``.

Post-process (``core.postprocess.postprocess`` in the worker, ``_results_jobs.process_source``) refuses a
    partial geometry in one line naming the missing fields (``core.geometry_checks``), warns when the
    detector angles disagree with the 2θ of hkl, energy and lattice, and adds or replaces, for output name
    ``<name>``: ``"<name> modulus"``, ``"<name> phase"``, ``"<name> strain"`` and ``"<name> surface"``
    (the isosurface coloured by strain, displacement or phase), with the colour bar, strain statistics,
    histogram and slices through the centre of mass in the *Display* box (``_results_display.DisplayPanel``),
    and points the view at the crystal. The numeric result (0 outside the support) is kept as
    ``self.result`` and in the modulus layer's ``metadata["bcdi"]["strain_result"]``. *Report…* writes the
    one-page report (``core.report``) of it.

Compare (``_results_compare.ComparePanel``): tick two or more reconstructions; the first ticked is the
    reference. In the worker each is registered onto it (twin, translation, global phase:
    ``core.metrics.register_to``) and its isosurface coloured by the *Colour by* field (shared symmetric
    limits); the widget shows ``"compare <name> surface"`` layers side by side in grid mode (one camera:
    the views turn together) with ``"compare <ref> − <name> phase diff"`` layers, and fills the metrics table
    (LLK, free LLK, χ², PRTF resolution when the intensity is known, sharpness, error and phase RMSE vs the
    first). The intensity is the ``data_layer`` of the reconstruction's metadata, or the one chosen under
    *Intensity*.

Export (of the last post-processed result): CXI (the complex object in PyNX's result layout,
    ``core.io.write_cxi_result``), compressed npz with cdiutils-like keys (phase and strain NaN outside the
    support, provenance in ``meta_json``) and VTI for ParaView (``core.export``), all atomic and never over
    the source file.

Input layers and files are never modified. Errors become napari notifications.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import BCDIError
from ..core.geometry_checks import angle_warnings, check_geometry, setup_known
from ..core.types import Geometry, ReconstructionResult
from ._layers import (
    PART_SUFFIXES,
    result_of,
    MASK_SUFFIX,
    HasJobSlot,
    JobSlot,
    LayerFollower,
    bcdi_meta,
    find_layer,
    guarded,
    layer_name,
    notify_info,
    notify_warning,
    put_layer,
    put_surface,
    set_combo_items,
)
from ._results_compare import ComparePanel
from ._results_display import DisplayPanel
from ._results_jobs import Source, process_source, read_source, report_job
from ._results_view import _float_or_none, _numbers
from ._worker import Job

log = logging.getLogger(__name__)

RESULT_FILTER = "Reconstructions (*.cxi *.h5 *.npz);;All files (*)"
OWN_KINDS = ("result_modulus", "result_phase", "result_strain", "result_surface", "compare_surface",
             "compare_phase", "compare_diff")
#: how the dock names the geometry fields in its messages
FIELD_LABELS = {"energy_kev": "Energy (keV)", "distance_m": "Distance (m)", "pixel_size_m": "Pixel (m)",
                "rocking_step_deg": "Rocking step (°)", "hkl": "hkl", "lattice_nm": "Lattice (nm)",
                "delta": "delta", "nu": "nu"}


_guarded = guarded("Results")


# ------------------------------------------------------------------------------------------------ widget
class ResultsWidget(HasJobSlot, QWidget):
    """Dock widget *Results* (see the module docstring)."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.result = None  # last StrainResult
        self.result_source: Source | None = None
        self._files: dict[str, Source] = {}  # "file: <name>" -> Source read from a file
        self._build()
        self.jobs = JobSlot("Results", self._action_buttons, self.cancel_button)
        self._follower = LayerFollower(self.viewer, self, self._refresh_sources)
        self._refresh_sources()

    # --- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.source_combo = QComboBox()
        self.source_combo.currentIndexChanged.connect(self._on_source_changed)
        self.file_button = QPushButton("File…")
        self.file_button.clicked.connect(self._browse_file)
        src_row = QHBoxLayout()
        src_row.addWidget(self.source_combo, 1)
        src_row.addWidget(self.file_button)

        self.energy_edit, self.distance_edit, self.pixel_edit, self.step_edit = (QLineEdit() for _ in range(4))
        self.hkl_edit, self.lattice_edit, self.voxel_edit, self.name_edit = (QLineEdit() for _ in range(4))
        self.pixel_edit.setToolTip("detector pixel size in m: one number or 'rows cols'")
        self.voxel_edit.setToolTip("voxel size (z y x) in nm, used when the geometry is incomplete")
        self.hkl_edit.setPlaceholderText("h k l")
        self.name_edit.setToolTip("output layers are '<name> modulus', '<name> phase', '<name> strain'")
        box = QGroupBox("Reconstruction")
        form = QFormLayout(box)
        form.addRow("Source", src_row)
        form.addRow("Energy (keV)", self.energy_edit)
        form.addRow("Distance (m)", self.distance_edit)
        form.addRow("Pixel (m)", self.pixel_edit)
        form.addRow("Rocking step (°)", self.step_edit)
        form.addRow("hkl", self.hkl_edit)
        form.addRow("Lattice (nm)", self.lattice_edit)
        form.addRow("Voxel (nm)", self.voxel_edit)
        form.addRow("Output name", self.name_edit)
        self.process_button = QPushButton("Post-process")
        self.process_button.clicked.connect(lambda: self.process())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        run_row = QHBoxLayout()
        run_row.addWidget(self.process_button)
        run_row.addWidget(self.cancel_button)
        form.addRow("", run_row)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.display = view_box = DisplayPanel(self.viewer, put=self._put, put_surface=self._put_surface,
                                               status=self.status)
        self.iso_slider, self.field_combo = view_box.iso_slider, view_box.field_combo
        self.stats, self.histogram, self.colour_bar = view_box.stats, view_box.histogram, view_box.colour_bar
        self.report_button = view_box.report_button
        self.report_button.clicked.connect(self._browse_report)
        self.compare_panel = cmp_box = ComparePanel(
            self.viewer, source=self.source, entry=self._entry, status=self.status,
            start=lambda *a, **kw: self.jobs.start(*a, **kw), put=self._put, put_surface=self._put_surface,
            display=view_box)
        self.compare_list, self.intensity_combo = cmp_box.compare_list, cmp_box.intensity_combo
        self.compare_button, self.table = cmp_box.compare_button, cmp_box.table
        self.compare_button.clicked.connect(lambda: self.compare())

        self.cxi_button = QPushButton("CXI…")
        self.npz_button = QPushButton("npz (cdiutils)…")
        self.vti_button = QPushButton("VTI…")
        self.cxi_button.clicked.connect(lambda: self._browse_export("cxi"))
        self.npz_button.clicked.connect(lambda: self._browse_export("npz"))
        self.vti_button.clicked.connect(lambda: self._browse_export("vti"))
        exp_box = QGroupBox("Export the post-processed result")
        erow = QHBoxLayout(exp_box)
        for b in (self.cxi_button, self.npz_button, self.vti_button):
            erow.addWidget(b)

        content = QWidget()
        lay = QVBoxLayout(content)
        for w in (box, view_box, cmp_box, exp_box, self.status):
            lay.addWidget(w)
        lay.addStretch(1)
        self.scroll = QScrollArea()  # the dock is taller than most screens: it scrolls, nothing is squeezed
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        self.scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        self._action_buttons = (self.process_button, self.compare_button, self.file_button, self.cxi_button,
                                self.npz_button, self.vti_button, self.report_button)

    # --- sources ----------------------------------------------------------------------------------
    def _find(self, name: str):
        return find_layer(self.viewer, name)

    @staticmethod
    def _base(name: str) -> str:
        """The reconstruction's name of a layer: ``"<name> modulus"`` (phase, support) -> ``"<name>"``."""
        return next((name[: -len(s)] for s in PART_SUFFIXES if name.endswith(s)), name)

    def _is_source_layer(self, layer) -> bool:
        from napari.layers import Image

        if not isinstance(layer, Image) or bcdi_meta(layer).get("kind") in OWN_KINDS:
            return False
        if isinstance(bcdi_meta(layer).get("result"), ReconstructionResult):
            return True
        if np.iscomplexobj(layer.data) and getattr(layer.data, "ndim", 0) == 3:
            return True
        return (layer.name.endswith(" modulus")
                and isinstance(self._find(self._base(layer.name) + " phase"), Image))

    def _source_layers(self) -> dict:
        """``{reconstruction name: the layer carrying it}``, in layer order: one entry per reconstruction,
        its ``" modulus"`` layer when it has one (the phasing widgets put the object on every layer)."""
        groups: dict[str, list] = {}
        for layer in self.viewer.layers:
            if self._is_source_layer(layer):
                groups.setdefault(self._base(layer.name), []).append(layer)
        return {base: next((lay for lay in lays if lay.name.endswith(" modulus")), lays[0])
                for base, lays in groups.items()}

    def source_names(self) -> list[str]:
        """Names offered as reconstructions: one per reconstruction in the viewer (its base name, e.g.
        ``"<data> conventional"``), then ``"file: <name>"`` entries."""
        return list(self._source_layers()) + list(self._files)

    def _entry(self, name) -> str:
        """The listed name of a reconstruction given by its listed name, or by a layer (or layer name) of it."""
        name = layer_name(name)
        if name in self._files or name in self._source_layers():
            return name
        layer = self._find(name)
        if layer is not None and self._is_source_layer(layer):
            return self._base(name)
        raise BCDIError(f"no reconstruction named {name!r}: choose one of {self.source_names()}")

    def _refresh_sources(self) -> None:
        names = self.source_names()
        current = self.source_combo.currentText()
        set_combo_items(self.source_combo, names)
        self.compare_panel.refresh(names)
        if self.source_combo.currentText() != current:
            self._on_source_changed()

    def checked_names(self) -> list[str]:
        """The reconstructions ticked in the Compare list, in order (the first is the reference)."""
        return self.compare_panel.checked_names()

    def set_checked(self, names: Sequence[str]) -> None:
        """Tick exactly ``names`` in the compare list, in that order (the first is the reference)."""
        self.compare_panel.set_checked(names)

    @property
    def comparison(self) -> dict | None:
        """The last comparison (``_results_jobs.compare_sources``'s output), or None."""
        return self.compare_panel.comparison

    def select_source(self, name) -> None:
        """Choose a reconstruction by its listed name or by any of its layers (or layer names)."""
        self._refresh_sources()
        self.source_combo.setCurrentText(self._entry(name))
        self._on_source_changed()

    def source(self, name) -> Source:
        """A :class:`Source` (private copies of the arrays) for a listed name, or any layer of it."""
        base = self._entry(name)
        if base in self._files:
            s = self._files[base]
            return replace(s, obj=s.obj.copy(), support=None if s.support is None else s.support.copy())
        layer = self._source_layers()[base]
        res = result_of(layer, self.viewer)
        if res is None:
            raise BCDIError(f"'{layer.name}' no longer shows a reconstruction: choose another")
        rec = res.reconstruction
        obj = np.array(rec.obj, dtype=np.complex64)  # copies: the worker never sees layer data
        src = Source(name=base, obj=obj, support=(np.asarray(rec.support) != 0).astype(np.uint8),
                     geometry=res.geometry, voxel_size=res.voxel_size_nm, llk=rec.llk, llk_free=rec.llk_free,
                     method=str(rec.method), origin=layer.name, path=res.source, history=list(rec.history or []))
        for k in ("recipe", "runs", "seed"):  # provenance of the report and the strain file
            if rec.meta.get(k) is not None:
                src.meta[k] = rec.meta[k]
        data_layer = self._find(res.data_name or "")
        if data_layer is not None and getattr(data_layer.data, "shape", None) == obj.shape:
            src.intensity = np.array(data_layer.data, np.float32)
            mask_layer = self._find(data_layer.name + MASK_SUFFIX)
            if mask_layer is not None and np.shape(mask_layer.data) == obj.shape:
                src.mask = (np.asarray(mask_layer.data) != 0).astype(np.uint8)
        return src

    def _on_source_changed(self, *_args) -> None:
        name = self.source_combo.currentText()
        if not name:
            return
        try:
            src = self.source(name)
        except BCDIError:
            return
        self.name_edit.setText(self._free_name(src.name))
        g = src.geometry or Geometry()
        px = g.pixel_size_m
        values = (g.energy_kev, g.distance_m, None if px is None else " ".join(f"{v:g}" for v in px),
                  g.rocking_step_deg, None if g.hkl is None else " ".join(str(int(v)) for v in g.hkl),
                  g.lattice_nm, None if src.voxel_size is None else " ".join(f"{v:g}" for v in src.voxel_size))
        edits = (self.energy_edit, self.distance_edit, self.pixel_edit, self.step_edit, self.hkl_edit,
                 self.lattice_edit, self.voxel_edit)
        for edit, v in zip(edits, values):
            edit.setText("" if v is None else (v if isinstance(v, str) else f"{v:g}"))

    def _free_name(self, base: str) -> str:
        """``base``, or ``"<base> results"`` when ``"<base> modulus"`` is a layer this widget did not make."""
        layer = self._find(f"{base} modulus")
        return base if layer is None or bcdi_meta(layer).get("kind") in OWN_KINDS else f"{base} results"

    def _geometry(self, base: Geometry | None) -> Geometry | None:
        px = _numbers(self.pixel_edit.text(), 2, "pixel size (m)")
        fields = {"energy_kev": _float_or_none(self.energy_edit.text(), "energy (keV)"),
                  "distance_m": _float_or_none(self.distance_edit.text(), "distance (m)"),
                  "pixel_size_m": px,
                  "rocking_step_deg": _float_or_none(self.step_edit.text(), "rocking step (°)"),
                  "hkl": _numbers(self.hkl_edit.text(), 3, "hkl", int),
                  "lattice_nm": _float_or_none(self.lattice_edit.text(), "lattice (nm)")}
        if base is None and all(v is None for v in fields.values()):
            return None
        return replace(base or Geometry(), **fields)

    def _checked_geometry(self, base: Geometry | None, shape) -> tuple[Geometry | None, list]:
        """The fields' geometry, refused when partial (one line naming what is missing); the warnings."""
        geometry = self._geometry(base)
        check_geometry(geometry, labels=FIELD_LABELS)
        warnings = angle_warnings(geometry, shape) if setup_known(geometry) else []
        return geometry, warnings

    # --- jobs -------------------------------------------------------------------------------------

    # --- files --------------------------------------------------------------------------------------
    @_guarded
    def open_file(self, path) -> Job | None:
        """Read a reconstruction file in a worker; it becomes ``"file: <name>"`` in the lists."""
        p = Path(path)
        if not p.exists():
            raise BCDIError(f"{p} does not exist: choose an existing CXI/npz result file")

        def done(src: Source) -> None:
            key = f"file: {src.name}"
            self._files[key] = src
            self._refresh_sources()
            self.select_source(key)
            self.status.setText(f"{p.name}: {src.method}, shape {src.obj.shape}")

        return self.jobs.start(read_source, str(p), desc=f"read {p.name}", on_done=done)

    # --- post-processing ----------------------------------------------------------------------------
    @_guarded
    def process(self, name: str | None = None) -> Job | None:
        """Post-process the chosen reconstruction in a worker; show modulus, phase, strain and its surface."""
        if name is not None:
            self.select_source(name)
        name = self.source_combo.currentText()
        if not name:
            raise BCDIError("no reconstruction: run the phasing, open a result file (File…) or add a complex "
                            "Image layer")
        src = self.source(name)
        geometry, warnings = self._checked_geometry(src.geometry, src.obj.shape)
        hkl = geometry.hkl if geometry is not None else None
        lattice = geometry.lattice_nm if geometry is not None else None
        voxel = _numbers(self.voxel_edit.text(), 3, "voxel size (nm)")
        if voxel is not None and any(v <= 0 for v in voxel):
            raise BCDIError(f"voxel size {voxel} nm must be positive")
        out_name = self.name_edit.text().strip() or self._free_name(src.name)
        for suffix in (" modulus", " phase", " strain", " surface"):
            layer = self._find(out_name + suffix)
            if layer is not None and bcdi_meta(layer).get("kind") not in OWN_KINDS:
                raise BCDIError(f"layer '{out_name}{suffix}' exists and is not a Results layer: choose another "
                                "output name")
        src.geometry, src.voxel_size = geometry, voxel or src.voxel_size
        setup = geometry if setup_known(geometry) else None  # hkl/lattice alone: voxel size, |G| from them
        for w in warnings:
            notify_warning(f"Results: {w}")
        self.status.setText("; ".join(warnings))

        def done(processed) -> None:
            self._show_result(out_name, src, processed, warnings)

        return self.jobs.start(process_source, src, setup, hkl=hkl, lattice_nm=lattice, voxel_size_nm=voxel,
                               field=self.display.field(), threshold=self.display.threshold(),
                               desc=f"post-process {src.name}", on_done=done)

    def _put(self, name: str, data: np.ndarray, kind: str, *, metadata: dict | None = None, **kw):
        """Add an Image layer, or replace the data of this widget's existing one of that name."""
        layer = self._find(name)
        if layer is not None and bcdi_meta(layer).get("kind") not in OWN_KINDS:
            raise BCDIError(f"layer '{name}' exists and is not a Results layer: choose another output name")
        meta = dict(metadata or {})
        meta["bcdi"] = {**meta.get("bcdi", {}), "kind": kind}
        return put_layer(self.viewer, name, data, metadata=meta, **kw)

    def _put_surface(self, name: str, data: tuple, kind: str, *, metadata: dict | None = None, **kw):
        """Add a Surface layer, or replace the data of this widget's existing one of that name."""
        layer = self._find(name)
        if layer is not None and bcdi_meta(layer).get("kind") not in OWN_KINDS:
            raise BCDIError(f"layer '{name}' exists and is not a Results layer: choose another output name")
        meta = dict(metadata or {})
        meta["bcdi"] = {**meta.get("bcdi", {}), "kind": kind}
        return put_surface(self.viewer, name, data, metadata=meta, **kw)

    def _show_result(self, name: str, src: Source, processed, warnings: list | None = None) -> None:
        self.result, self.result_source, self.result_name = processed.result, src, name
        self.display.show_result(name, src, processed)
        notes = list(warnings or []) + [str(n) for n in processed.result.notes]
        if notes:
            self.status.setText("; ".join(notes))

    # --- comparison ---------------------------------------------------------------------------------
    @_guarded
    def compare(self, names=None) -> Job | None:
        """Register the ticked reconstructions (or ``names``) onto the first, show them in grid mode, fill the
        table (``_results_compare.ComparePanel.compare``)."""
        return self.compare_panel.compare(names)

    # --- export -------------------------------------------------------------------------------------
    def _require_result(self, what: str = "export"):
        if self.result is None or self.result_source is None:
            raise BCDIError(f"nothing to {what}: post-process a reconstruction first")
        return self.result, self.result_source

    def _protect(self, src: Source) -> list:
        return [p for p in (src.path,) if p]

    def _export(self, func, path, what: str) -> Job | None:
        p = Path(path)
        return self.jobs.start(func, str(p), desc=f"export {p.name}",
                           on_done=lambda out: notify_info(f"Results: {what} written to {out}"))

    @_guarded
    def export_cxi(self, path) -> Job | None:
        """Write the post-processed reconstruction's complex object in PyNX's CXI result layout."""
        from ..core.io import write_cxi_result

        _, src = self._require_result()
        rec, geometry, protect = src.reconstruction(), src.geometry, self._protect(src)
        return self._export(lambda p, progress=None, cancel=None: write_cxi_result(p, rec, geometry,
                                                                                    protect=protect),
                            path, "CXI")

    @_guarded
    def export_npz(self, path) -> Job | None:
        """Write the result as npz with cdiutils-like keys (``core.export.export_npz_cdiutils``)."""
        from ..core.export import export_npz_cdiutils

        result, src = self._require_result()
        protect = self._protect(src)
        prov = self._provenance(src)
        return self._export(lambda p, progress=None, cancel=None: export_npz_cdiutils(p, result, protect=protect,
                                                                                       provenance=prov),
                            path, "npz")

    @staticmethod
    def _provenance(src: Source) -> dict:
        from ..core.report import default_provenance

        prov = default_provenance(source=src.path or src.origin, method=src.method, recipe=src.meta.get("recipe"),
                                  geometry=src.geometry, llk=src.llk, llk_free=src.llk_free, title=src.name)
        prov["history"] = list(src.history or [])
        return prov

    # --- report -------------------------------------------------------------------------------------
    @_guarded
    def report(self, path) -> Job | None:
        """Write the one-page report (PNG or PDF by the suffix) of the last post-processed result."""
        result, src = self._require_result("report")
        p = Path(path)
        if p.suffix.lower() not in (".png", ".pdf"):
            raise BCDIError(f"{p.name}: a report is a .png or .pdf file: choose one of those names")
        return self.jobs.start(report_job, str(p), result, src, threshold=self.display.threshold(),
                               field=self.display.field(), desc=f"report {p.name}",
                               on_done=lambda out: notify_info(f"Results: report written to {out}"))

    @_guarded
    def export_vti(self, path) -> Job | None:
        """Write the result as a VTK ImageData file for ParaView (``core.export.export_vti``)."""
        from ..core.export import export_vti

        result, src = self._require_result()
        protect = self._protect(src)
        return self._export(lambda p, progress=None, cancel=None: export_vti(p, result, protect=protect),
                            path, "VTI")

    # --- dialogs ------------------------------------------------------------------------------------
    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a reconstruction", str(Path.cwd()), RESULT_FILTER)
        if path:
            self.open_file(path)

    def _browse_report(self) -> None:
        name = getattr(self, "result_name", "result")
        path, _ = QFileDialog.getSaveFileName(self, "Write a report", str(Path.cwd() / f"{name} report.png"),
                                              "Report (*.png *.pdf)")
        if path:
            if Path(path).suffix.lower() not in (".png", ".pdf"):
                path += ".png"
            self.report(path)

    def _browse_export(self, kind: str) -> None:
        name = getattr(self, "result_name", "result")
        suffix = {"cxi": ".cxi", "npz": ".npz", "vti": ".vti"}[kind]
        path, _ = QFileDialog.getSaveFileName(self, f"Export {kind.upper()}", str(Path.cwd() / (name + suffix)),
                                              f"{kind.upper()} (*{suffix})")
        if path:
            if not path.lower().endswith(suffix):
                path += suffix
            {"cxi": self.export_cxi, "npz": self.export_npz, "vti": self.export_vti}[kind](path)
