"""The **Batch** dock widget: every scan of a pipeline configuration on a Dask cluster, then its results.

*Config* is a YAML pipeline configuration (docs/batch.md, the file ``bcdi-dl batch`` takes), checked as soon
as it is chosen (``pipeline.config.load_config``: an unknown key, a wrong type or a missing file is one line
in red under it and *Run* stays off). *Output* is the batch folder (default ``results`` beside the config),
*Workers* the processes of the embedded ``distributed.LocalCluster`` (default 2).

*Run* calls ``pipeline.batch.run_batch`` in a job thread (the event loop never waits on it): the cluster's
worker processes do the work, so napari's process imports neither TensorFlow nor the phasing of a scan,
whatever the configuration asks. The table has one row per scan (status ``queued`` → ``running`` →
``done`` / ``failed``, LLK, free LLK, seconds, the one-line error), updated from the batch's events as
scans start and finish; the bar counts finished scans. A rerun skips the scans already done (resumable, as
the CLI). *Cancel* stops the batch within half a second: the running scans are dropped and the cluster shut
down; finished scans stay and a later *Run* picks up the rest.

*Open* (or a double-click on a row) reads a finished scan's folder (``pipeline.folder.read_result``, in a
worker) and adds ``"<scan> batch modulus"``, ``"... phase"`` and ``"... support"`` (the reconstruction,
through the phasing docks' ``put_object_layers``: the Results dock lists it as ``"<scan> batch"``) and
``"<scan> batch strain"`` (the post-processed strain of ``strain.npz`` on its own grid, NaN outside the
crystal, ``coolwarm`` over ±its 99.5th percentile, ``metadata["bcdi"]["strain_result"]``). Opening again
replaces these layers' data. Errors become the dock's status line and napari notifications.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, Signal
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import BCDIError
from ..core.progress import report
from ._layers import HasJobSlot, JobSlot, guarded, notify_error, put_layer
from ._worker import Job, run_job
from .dl_phase import put_object_layers

log = logging.getLogger(__name__)

TITLE = "Batch"
COLUMNS = ("scan", "status", "LLK", "free LLK", "time (s)", "error")
DEFAULT_WORKERS = 2
DEFAULT_OUT = "results"
SUFFIX = " batch"  # layers "<scan> batch modulus": beside the docks' "<data> conventional ..." and "... DL ..."
STRAIN_CMAP = "coolwarm"
#: seconds between two looks of the batch loop for started scans and Cancel (run_batch's heartbeat)
LOOK_S = 0.5

_guarded = guarded(TITLE)


def batch_job(config, out_dir: str, workers: int, *, on_event=None, progress=None, cancel=None):
    """Job of *Run* (no Qt): ``run_batch`` on an embedded LocalCluster, each event passed to ``on_event``
    and the count of finished scans to ``progress``."""
    from ..pipeline.batch import run_batch

    seen = {"total": 0, "finished": 0}

    def event(kind: str, info: dict) -> None:
        if kind == "start":
            seen["total"] = int(info.get("total", 0))
        elif kind in ("skipped", "finished"):
            seen["finished"] += 1
        if on_event is not None:
            on_event(kind, dict(info))
        if kind in ("start", "skipped", "finished"):
            report(progress, None, seen["finished"], max(seen["total"], seen["finished"]))

    return run_batch(config, out_dir, workers=workers, heartbeat_s=LOOK_S, on_event=event, cancel=cancel)


class _Relay(QObject):
    """Carries the batch's events from the job thread to the main thread (a queued signal)."""

    event = Signal(str, object)


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return ""
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


class BatchWidget(HasJobSlot, QWidget):
    """Dock widget *Batch* (see the module docstring)."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.config = None  # the validated PipelineConfig, or None
        self.result = None  # BatchResult of the last finished run
        self.open_job: Job | None = None
        self.rows: dict[str, dict] = {}  # scan -> its latest row (status, llk, error, folder...)
        self.out_dir: Path | None = None  # the batch folder the table shows
        self._relay = _Relay(self)
        self._relay.event.connect(self._on_event)
        self._build()
        self.jobs = JobSlot(TITLE, [self.run_button], self.cancel_button, progress_bar=self.progress_bar,
                            on_finished=self._finished)
        self._update_buttons()

    # --- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.config_edit = QLineEdit()
        self.config_edit.setPlaceholderText("pipeline configuration (YAML) listing the scans")
        self.config_edit.editingFinished.connect(lambda: self.set_config(self.config_edit.text()))
        config_browse = QPushButton("…")
        config_browse.setToolTip("choose the configuration file")
        config_browse.clicked.connect(self._browse_config)
        self.config_error = QLabel("")
        self.config_error.setStyleSheet("color: #e05050")
        self.config_error.setWordWrap(True)
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("batch folder: one folder per scan, summary.csv, summary.html")
        out_browse = QPushButton("…")
        out_browse.setToolTip("choose the output folder")
        out_browse.clicked.connect(self._browse_out)
        self.workers_spin = QSpinBox()
        self.workers_spin.setRange(1, 256)
        self.workers_spin.setValue(DEFAULT_WORKERS)
        self.workers_spin.setToolTip("worker processes of the embedded Dask LocalCluster (one thread each)")
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(lambda: self.run())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("%v / %m scans")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setToolTip("double-click a finished scan to open its results as layers")
        self.table.cellDoubleClicked.connect(lambda r, _c: self.open_row(r))
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.open_button = QPushButton("Open results")
        self.open_button.setToolTip("add the selected scan's modulus, phase, support and strain as layers")
        self.open_button.clicked.connect(lambda: self.open_selected())
        self.status = QLabel("choose a configuration, then Run")
        self.status.setWordWrap(True)

        box = QGroupBox("Batch: a configuration's scans on a Dask cluster")
        form = QFormLayout(box)
        form.addRow("Config", self._pair(self.config_edit, config_browse))
        form.addRow(self.config_error)
        form.addRow("Output", self._pair(self.out_edit, out_browse))
        form.addRow("Workers", self.workers_spin)
        row = QHBoxLayout()
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        form.addRow(row)
        form.addRow(self.progress_bar)
        form.addRow(self.table)
        form.addRow(self.open_button)
        form.addRow(self.status)
        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addStretch(1)

    @staticmethod
    def _pair(edit: QLineEdit, button: QPushButton) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(edit, 1)
        h.addWidget(button)
        return w

    # --- configuration ----------------------------------------------------------------------------
    def set_config(self, path) -> bool:
        """Choose and check the configuration file; True when it is valid (the error is shown otherwise)."""
        text = str(path).strip()
        if self.config_edit.text() != text:
            self.config_edit.setText(text)
        if text and not self.out_edit.text().strip():
            self.out_edit.setText(str(Path(text).expanduser().resolve().parent / DEFAULT_OUT))
        return self.validate() is not None

    def set_output(self, path) -> None:
        """Choose the batch folder."""
        self.out_edit.setText(str(path))

    def validate(self):
        """Read and check the configuration (``load_config``); the PipelineConfig, or None with the one-line
        error shown in red."""
        from ..pipeline.config import load_config

        text = self.config_edit.text().strip()
        self.config = None
        try:
            if not text:
                raise BCDIError("no configuration: choose the YAML file that lists the scans and steps")
            self.config = load_config(Path(text).expanduser())
        except BCDIError as err:
            self.config_error.setText(str(err))
        except Exception as err:  # a bug must not take napari down
            log.exception("Batch: checking %s failed", text)
            self.config_error.setText(f"{text}: cannot be checked: {type(err).__name__}: {err}")
        else:
            self.config_error.setText("")
            c = self.config.phase
            what = c.method if c.method == "dl" else f"{c.method} '{c.recipe}' × {c.runs}"
            self.status.setText(f"{len(self.config.scans)} scan entr{'y' if len(self.config.scans) == 1 else 'ies'}"
                                f", phase {what}: Run")
        self._update_buttons()
        return self.config

    def _out(self) -> Path:
        text = self.out_edit.text().strip()
        if not text:
            raise BCDIError("no output folder: choose where the batch writes its results")
        out = Path(text).expanduser().resolve()
        if out.exists() and not out.is_dir():
            raise BCDIError(f"output {out} is a file: choose a folder for the batch results")
        return out

    # --- run ----------------------------------------------------------------------------------------
    def run(self) -> Job | None:
        """Run the configuration's scans in the background (the Job, or None when nothing started)."""
        try:
            if self.jobs.refuse_if_busy():
                return None
            if self.validate() is None:
                raise BCDIError(self.config_error.text())
            out = self._out()
            self.out_dir, self.result, self.rows = out, None, {}
            self.table.setRowCount(0)
            n = self.workers_spin.value()
            self.status.setText(f"starting {n} worker{'s' * (n > 1)}…")
            return self.jobs.start(batch_job, self.config, str(out), n, desc=TITLE, on_done=self._done,
                                   on_event=self._emit)
        except BCDIError as err:
            self.status.setText(f"error: {err}")
            notify_error(f"{TITLE}: {err}")
        except Exception as err:  # a bug must not take napari down
            log.exception("Batch failed to start")
            self.status.setText(f"error: {type(err).__name__}: {err}")
            notify_error(f"{TITLE} failed: {type(err).__name__}: {err}")
        return None

    def _emit(self, kind: str, info: dict) -> None:
        """Job thread: hand an event to the main thread (a closed dock just drops it)."""
        try:
            self._relay.event.emit(kind, info)
        except RuntimeError:  # the dock was closed while the batch ran
            pass

    def _on_event(self, kind: str, info: dict) -> None:
        """Main thread: one event of ``run_batch``."""
        scan = info.get("scan")
        if kind == "start":
            self.status.setText(f"{info.get('total', 0)} scans on {info.get('workers', '?')} workers")
        elif kind == "submitted":
            self._set_row(scan, {"scan": scan, "status": "queued", "input": info.get("input", "")})
        elif kind == "running":
            self._set_row(scan, {**self.rows.get(scan, {"scan": scan}), "status": "running"})
        elif kind == "skipped":
            self._set_row(scan, {**info, "skipped": True})
        elif kind == "finished":
            self._set_row(scan, {k: v for k, v in info.items() if not k.startswith("n_")})
            self.status.setText(f"{info.get('n_done', 0)} done, {info.get('n_failed', 0)} failed, "
                                f"{info.get('n_running', 0)} to go")

    def _set_row(self, scan: str | None, row: dict) -> None:
        if not scan:
            return
        new = scan not in self.rows
        self.rows[scan] = row
        r = list(self.rows).index(scan)
        if new:
            self.table.insertRow(r)
        status = str(row.get("status", ""))
        cells = (scan, status, _fmt(row.get("llk")), _fmt(row.get("llk_free")), _fmt(row.get("total_s")),
                 str(row.get("error") or ""))
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setToolTip(text if c == 5 else "finished by an earlier run (skipped)" if row.get("skipped")
                            else str(row.get("input") or ""))
            if status == "failed":
                item.setForeground(QColor("#e05050"))
            self.table.setItem(r, c, item)
        if new:
            self.table.resizeColumnsToContents()
        self._update_buttons()

    def _done(self, result) -> None:
        """Main thread: the batch ended; the table becomes its summary (``summary.csv``'s rows)."""
        self.result = result
        seen: set[str] = set()
        for row in result.rows:
            scan = str(row.get("scan"))
            if scan in seen:  # refused: its result folder name clashes with another scan's; a row of its own
                scan = f"{scan} ({row.get('input', '?')})"
            seen.add(scan)
            self._set_row(scan, row)
        self.table.resizeColumnsToContents()
        self.status.setText(f"{len(result.done)} done, {len(result.failed)} failed -> "
                            f"{result.out_dir / 'summary.html'}")

    def _finished(self) -> None:
        job = self.job
        if job is not None and job.cancelled:
            for scan, row in list(self.rows.items()):
                if row.get("status") in ("queued", "running"):
                    self._set_row(scan, {**row, "status": "cancelled"})
            self.status.setText("cancelled: the finished scans are kept; Run again to do the rest")
        elif job is not None and job.error is not None:
            self.status.setText(f"error: {job.error}")
        self._update_buttons()

    def _update_buttons(self) -> None:
        try:
            busy = self.jobs.busy
        except AttributeError:  # during construction
            busy = False
        self.run_button.setEnabled(self.config is not None and not busy)
        scan = self.selected_scan()
        self.open_button.setEnabled(scan is not None and self.rows.get(scan, {}).get("status") == "done"
                                    and not (self.open_job is not None and self.open_job.running))

    # --- results ------------------------------------------------------------------------------------
    def scans(self) -> list[str]:
        """The scans in the table, in order."""
        return list(self.rows)

    def status_of(self, scan: str) -> str:
        """The status shown for ``scan`` (queued, running, done, failed, cancelled)."""
        return str(self.rows[scan].get("status", ""))

    def selected_scan(self) -> str | None:
        rows = {i.row() for i in self.table.selectedItems()}
        if len(rows) != 1:
            return None
        item = self.table.item(rows.pop(), 0)
        return None if item is None else item.text()

    def open_row(self, row: int) -> Job | None:
        """Open the scan of table row ``row`` (a double-click)."""
        item = self.table.item(row, 0)
        return None if item is None else self.open_scan(item.text())

    def open_selected(self) -> Job | None:
        """Open the selected scan's results as layers."""
        scan = self.selected_scan()
        if scan is None:
            notify_error(f"{TITLE}: select a finished scan in the table first")
            return None
        return self.open_scan(scan)

    @_guarded
    def open_scan(self, scan: str) -> Job | None:
        """Read a finished scan's folder in a worker and add its layers (the Job)."""
        from ..pipeline.folder import read_result

        row = self.rows.get(scan)
        if row is None or self.out_dir is None:
            raise BCDIError(f"no scan {scan!r} in the table: run the batch first")
        if row.get("status") != "done":
            raise BCDIError(f"{scan} is {row.get('status') or 'not finished'}: only a done scan has results to open")
        if self.open_job is not None and self.open_job.running:
            raise BCDIError(f"busy with '{self.open_job.desc}': wait for it")
        folder = self.out_dir / str(row.get("folder") or scan)
        self.open_job = run_job(read_result, str(folder), desc=f"open {scan}",
                                on_done=lambda res: self._show(scan, res))
        self.open_job.finished.connect(self._update_buttons)
        self._update_buttons()
        return self.open_job

    def _show(self, scan: str, res) -> None:
        """Main thread: the reconstruction and strain layers of one scan (a ``pipeline.folder.FolderResult``)."""
        result = res.result
        prefix = scan + SUFFIX
        vs = result.voxel_size_nm
        geo = {"scale": tuple(float(v) for v in vs), "units": "nm"} if vs is not None else {}
        put_object_layers(self.viewer, prefix, result, geo)
        s = result.strain
        if s is not None:
            inside = np.asarray(s.support) != 0
            vals = np.asarray(s.strain)[inside]
            lim = float(np.percentile(np.abs(vals), 99.5)) if vals.size else 0.0
            lim = lim if lim > 0 else 1e-4
            strain = np.where(inside, s.strain, np.nan).astype(np.float32)
            # not the reconstruction's metadata: the Results dock would list this layer as one more source
            meta = {"bcdi": {"kind": "strain", "strain_result": s, "frame": s.frame, "origin": prefix,
                             "source": str(res.folder / "strain.npz")}}
            put_layer(self.viewer, f"{prefix} strain", strain, colormap=STRAIN_CMAP, contrast_limits=(-lim, lim),
                      scale=tuple(float(v) for v in s.voxel_size), units="nm", metadata=meta)
        self.status.setText(f"{scan}: {result.method}, LLK {_fmt(result.llk)}, free LLK {_fmt(result.llk_free)}"
                            f" -> layers '{prefix} modulus', 'phase', 'support'"
                            f"{', strain' if s is not None else ''}")

    # --- dialogs ------------------------------------------------------------------------------------
    def _browse_config(self) -> None:
        start = self.config_edit.text().strip() or str(Path.cwd())
        path, _ = QFileDialog.getOpenFileName(self, "Batch configuration", start, "YAML (*.yaml *.yml);;All files (*)")
        if path:
            self.set_config(path)

    def _browse_out(self) -> None:
        start = self.out_edit.text().strip() or str(Path.cwd())
        path = QFileDialog.getExistingDirectory(self, "Batch output folder", start)
        if path:
            self.set_output(path)


__all__ = ["BatchWidget", "batch_job"]
