"""One scan through the pipeline: read → mask → inpaint → phase → strain → export, by the configuration.

:func:`run_scan` only calls the functions of ``core`` and ``models`` that the ``bcdi-dl`` subcommands call
(``core.io.read``, ``core.masks``, ``models.inpaint.inpaint``, ``core.phasing.phase`` or
``models.dl_phasing.dl_phase``, ``core.postprocess.postprocess``, the writers of ``core.io`` and
``core.export``), with the same arguments, so a configuration and the equivalent commands give the same
arrays. Models are imported inside the steps that need them: a conventional run never loads TensorFlow.

Outputs, in ``out_dir`` (each written atomically): ``reconstruction.npz`` and/or ``reconstruction.cxi``,
``strain.npz`` (cdiutils keys, ``core.export.export_npz_cdiutils`` as ``bcdi-dl strain``; ``strain.vti``
when asked), ``provenance.yaml`` (the
sidecar: the resolved configuration of this scan and its provenance) and ``log.txt``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import BCDIError
from ..core.progress import CancelToken, ProgressFn, report
from ..core.types import Geometry, LoadedData, Reconstruction
from . import provenance as prov
from .config import PipelineConfig
from .scans import ScanItem, default_name
from .steps import inpaint_step, phase_step, strain_step

#: relative cost of each step, for one progress count over the whole scan
WEIGHTS = {"read": 20, "mask": 10, "inpaint": 120, "phase": 730, "strain": 80, "export": 40}
LOG = "log.txt"


@dataclass
class ScanResult:
    """What :func:`run_scan` returns.

    Attributes
    ----------
    item : the scan.
    out_dir : where the outputs are.
    reconstruction : the phasing result (object, support, LLK, free LLK, method, meta with provenance).
    strain : the post-processing result (``core.postprocess.StrainResult``) or None when switched off.
    geometry : the geometry used (the file's, with the configuration's values on top).
    files : output name -> path.
    timings : seconds per step (and ``total``).
    provenance : the ``provenance:`` block of the sidecar.
    config : the resolved configuration of this scan (the sidecar without provenance).
    log : the lines of ``log.txt``.
    cold_start : True when this scan loaded Keras (TensorFlow) in its process (the first DL scan of a worker), False
        when it found it loaded, None when no model ran.
    """

    item: ScanItem
    out_dir: Path
    reconstruction: Reconstruction
    strain: object | None
    geometry: Geometry
    files: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    log: list = field(default_factory=list)
    cold_start: bool | None = None

    @property
    def llk(self) -> float | None:
        return self.reconstruction.llk

    @property
    def llk_free(self) -> float | None:
        return self.reconstruction.llk_free

    def summary_row(self) -> dict:
        """The scan's row of ``summary.csv`` (status and worker are added by the caller)."""
        rec = self.reconstruction
        row = {"scan": self.item.name, "llk": _num(rec.llk), "llk_free": _num(rec.llk_free),
               "method": rec.method, "recipe": rec.meta.get("recipe", ""),
               "support_voxels": int(np.count_nonzero(rec.support)), "input": self.item.label()}
        row.update({f"{k}_s": round(float(v), 3) for k, v in self.timings.items()})
        if self.cold_start is not None:
            row["cold_start"] = self.cold_start
        return row


def _num(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


class _Steps:
    """One ``progress(done, total)`` over the steps that run, each step's own count scaled into its share."""

    def __init__(self, progress: ProgressFn | None, cancel: CancelToken | None, steps: list[str]) -> None:
        self.progress, self.cancel = progress, cancel
        self.start: dict[str, int] = {}
        at = 0
        for s in steps:
            self.start[s] = at
            at += WEIGHTS[s]
        self.total = at

    def sub(self, step: str) -> ProgressFn:
        lo, w = self.start[step], WEIGHTS[step]

        def cb(done: int, total: int) -> None:
            report(self.progress, self.cancel, lo + int(w * min(done, total) / max(total, 1)), self.total)

        return cb

    def done(self, step: str) -> None:
        report(self.progress, self.cancel, self.start[step] + WEIGHTS[step], self.total)


def as_item(cfg: PipelineConfig, scan) -> ScanItem:
    """A :class:`ScanItem` from an item or a path (a path takes ``read.detector`` and no BLISS scan)."""
    if isinstance(scan, ScanItem):
        return scan
    p = cfg.path(scan)
    return ScanItem(p, default_name(p, cfg.base_dir), None, cfg.read.detector, None)


# ------------------------------------------------------------------------------------------------ steps
def read_scan(cfg: PipelineConfig, item: ScanItem) -> LoadedData:
    """Step ``read``: ``core.io.read`` of the scan; a reconstruction is refused."""
    from ..core.io import read

    loaded = read(item.path, scan=item.scan, detector=item.detector, roi=cfg.read.roi)
    if loaded.kind != "intensity":
        raise BCDIError(f"{item.label()} holds a reconstruction ({loaded.kind}), not a diffraction pattern: "
                        "list the data files in 'scans'")
    return loaded


def build_mask(cfg: PipelineConfig, item: ScanItem, loaded: LoadedData, note) -> np.ndarray | None:
    """Step ``mask``: the union of the stored mask, the mask files, a detector preset and detected gaps."""
    from ..core import masks
    from ..core.io import read_mask

    data = np.asarray(loaded.data)
    parts, names = [], []
    if cfg.mask.use_stored and loaded.mask is not None:
        parts.append(np.asarray(loaded.mask) != 0)
        names.append("stored")
    for f in (cfg.mask.file, item.mask):
        if f:
            parts.append(read_mask(cfg.path(f), data.shape) != 0)
            names.append(Path(f).name)
    if cfg.mask.preset:
        roi = loaded.geometry.roi or (0, 0, 0, 0)
        parts.append(masks.preset_mask(cfg.mask.preset, data.shape, (roi[0], roi[2])) != 0)
        names.append(f"preset {cfg.mask.preset}")
    if cfg.mask.detect_gaps:
        parts.append(masks.detect_gaps(data) != 0)
        names.append("detected gaps")
    if not parts:
        note("mask: none")
        return None
    mask = masks.union(*parts)
    if cfg.mask.dilate:
        mask = masks.dilate(mask, cfg.mask.dilate)
    note(f"mask: {int(np.count_nonzero(mask))} voxels ({', '.join(names)}"
         f"{f', dilated by {cfg.mask.dilate}' if cfg.mask.dilate else ''})")
    return mask


def fill_gaps(cfg: PipelineConfig, data: np.ndarray, mask: np.ndarray | None, note, progress, cancel
              ) -> np.ndarray | None:
    """Step ``inpaint`` (:func:`.steps.inpaint_step`); None when there is nothing to fill."""
    c = cfg.inpaint
    out = inpaint_step(cfg, data, mask, progress=progress, cancel=cancel, empty_ok=True)
    if out.filled is None:
        note(f"inpaint ({c.method}): no masked voxel, nothing to fill")
        return None
    if out.finetune is not None:
        res = out.finetune
        note(f"inpaint: fine-tuned {res.steps} steps, loss {res.loss_before:.4g} -> {res.loss_after:.4g}")
    for w in out.warnings:
        note(f"inpaint: warning: {w}")
    note(f"inpaint ({c.method}): {int(np.count_nonzero(mask))} gap voxels filled")
    return out.filled


def phase_scan(cfg: PipelineConfig, intensity: np.ndarray, mask: np.ndarray | None, backend: str, note,
               progress, cancel, filled: bool = False) -> Reconstruction:
    """Step ``phase`` (:func:`.steps.phase_step`), its choice noted in the log."""
    out = phase_step(cfg, intensity, mask, backend=backend, filled=filled, progress=progress, cancel=cancel)
    rec = out.reconstruction
    note(f"phase ({cfg.phase.method}): recipe run {out.recipe_run()}, {out.choice()}")
    return rec


#: how the configuration names the geometry values in messages (``core.geometry_checks``)
CONFIG_LABELS = {"energy_kev": "geometry.energy_kev", "distance_m": "geometry.distance_m",
                 "pixel_size_m": "geometry.pixel_size_m", "rocking_step_deg": "geometry.rocking_step_deg",
                 "hkl": "geometry.hkl", "lattice_nm": "geometry.lattice_nm", "delta": "geometry.angles_deg.delta",
                 "nu": "geometry.angles_deg.nu"}
SETUP_KEYS = ("energy_kev", "distance_m", "pixel_size_m", "rocking_step_deg")


def apply_geometry(base: Geometry, cfg: PipelineConfig) -> Geometry:
    """The file's geometry with the configuration's ``geometry`` values on top (as ``bcdi-dl strain``)."""
    g = cfg.geometry
    geom = dataclasses.replace(base, angles_deg=dict(base.angles_deg or {}))
    for name in ("energy_kev", "distance_m", "rocking_step_deg", "rocking_motor", "lattice_nm"):
        value = getattr(g, name)
        if value is not None:
            setattr(geom, name, value)
    if g.pixel_size_m is not None:
        px = g.pixel_size_m if isinstance(g.pixel_size_m, tuple) else (g.pixel_size_m,)
        geom.pixel_size_m = (float(px[0]), float(px[-1]))
    if g.hkl is not None:
        geom.hkl = tuple(g.hkl)
    geom.angles_deg.update(g.angles_deg)
    return geom


def strain_geometry(cfg: PipelineConfig, base: Geometry, shape, note) -> tuple[Geometry, tuple | None]:
    """The geometry and voxel size to post-process with, checked as ``bcdi-dl strain`` checks them.

    A partial setup (some of energy, distance, pixel size, rocking step) is refused in one line
    (``core.geometry_checks.check_geometry``); a partial one in the file is dropped when the configuration
    gives a voxel size; detector angles that disagree with hkl/energy/lattice give a warning in the log.
    """
    from ..core.geometry_checks import geometry_for_strain

    voxel = cfg.strain.voxel_size_nm
    if voxel is not None and not isinstance(voxel, tuple):
        voxel = (voxel,) * 3
    given = any(getattr(cfg.geometry, k) is not None for k in SETUP_KEYS)
    geom, notes, warnings = geometry_for_strain(apply_geometry(base, cfg), voxel, shape, setup_given=given,
                                                labels=CONFIG_LABELS, voxel_label="strain.voxel_size_nm")
    for text in notes:
        note(f"strain: note: {text}")
    for w in warnings:
        note(f"strain: warning: {w}")
    return geom, voxel


def strain_of(cfg: PipelineConfig, rec: Reconstruction, geom: Geometry, voxel, progress, cancel):
    """Step ``strain`` (:func:`.steps.strain_step`) with the scan's geometry."""
    return strain_step(cfg, rec.obj, rec.support, geom, voxel_size_nm=voxel, progress=progress, cancel=cancel)


def write_outputs(cfg: PipelineConfig, out: Path, rec: Reconstruction, geom: Geometry, strain, text: str,
                  protect: list) -> dict:
    """Step ``export``: the reconstruction(s), strain files; provenance embedded in each."""
    from ..core.io import write_reconstruction
    from ..core.io.atomic import atomic_path

    files: dict = {}
    for fmt in cfg.export.reconstruction:
        path = out / f"reconstruction.{fmt}"
        if fmt == "cxi":
            with atomic_path(path, protect) as tmp:
                write_reconstruction(tmp, rec, geom, protect=protect)
                prov.embed_in_cxi(tmp, text)
        else:
            write_reconstruction(path, rec, geom, protect=protect)
        files[f"reconstruction_{fmt}"] = path
    if strain is not None:
        from ..core.export import export_npz_cdiutils, export_vti

        if cfg.export.strain:
            about = {"source": str(protect[0]), "method": rec.method, "recipe": rec.meta.get("recipe", ""),
                    "llk": rec.llk, "llk_free": rec.llk_free, "provenance": rec.meta.get("provenance"),
                    "pipeline_yaml": text}
            files["strain"] = export_npz_cdiutils(out / "strain.npz", strain, protect=protect, provenance=about)
        if cfg.export.vti:
            files["vti"] = export_vti(out / "strain.vti", strain, protect=protect)
    return files


# ------------------------------------------------------------------------------------------------- run
def scan_config(cfg: PipelineConfig, item: ScanItem, backend: str) -> dict:
    """The resolved configuration of one scan (the sidecar's keys): this scan only, the backend that ran."""
    d = cfg.resolved()
    d["scans"] = [item.spec()]
    d["phase"]["backend"] = backend
    return d


def _model_inputs(cfg: PipelineConfig) -> list[dict]:
    """Input records of the shipped weights a DL step loads (their SHA-256 is part of the provenance)."""
    names = []
    if cfg.inpaint.method == "dl":
        names.append(("model inpaint", "inpaint"))
    if cfg.phase.method == "dl":
        from ..models.dl_phasing import PHASE_MODEL

        names.append(("model phase", PHASE_MODEL))
    if not names:
        return []
    from ..models.registry import model_path

    return [prov.input_record(model_path(n), role) for role, n in names]


def run_scan(config: PipelineConfig, scan, out_dir: str | Path, progress: ProgressFn | None = None,
             cancel: CancelToken | None = None, *, log: list | None = None) -> ScanResult:
    """Run one scan through the configured steps and write its outputs in ``out_dir``.

    Parameters
    ----------
    config : a validated configuration (:func:`~.config.load_config`); its ``scans`` are not used.
    scan : a :class:`~.scans.ScanItem`, or a path (relative to the config file).
    out_dir : folder of the outputs (created); files there of the same names are replaced, atomically.
    progress, cancel : one ``(done, total)`` count over all steps; the token stops the run (``Cancelled``).
    log : a list the log lines are appended to as they come (kept by the caller when the run fails).

    Returns
    -------
    ScanResult

    Raises
    ------
    BCDIError
        Unreadable scan, a mask of another shape, a phasing failure...: one line, nothing half-written.
    """
    cfg = config
    item = as_item(cfg, scan)
    lines = log if log is not None else []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started, t_all = time.time(), time.perf_counter()
    tf_before = "keras" in sys.modules  # Keras (and its backend, TensorFlow by default) loaded
    timings: dict[str, float] = {}

    def note(msg: str) -> None:
        lines.append(msg)

    steps = ["read", "mask"] + (["inpaint"] if cfg.inpaint.method != "none" else []) + ["phase"]
    steps += (["strain"] if cfg.strain.enabled else []) + ["export"]
    st = _Steps(progress, cancel, steps)
    from ..core.phasing import select_backend_name

    backend = select_backend_name(cfg.phase.backend)

    t = time.perf_counter()
    loaded = read_scan(cfg, item)
    inputs = [prov.input_record(item.path, "scan")]
    timings["read"] = time.perf_counter() - t
    note(f"read: {item.label()} ({loaded.meta.get('format', '?')}, shape {tuple(loaded.data.shape)}) "
         f"in {timings['read']:.2f} s")
    st.done("read")

    geom, voxel = apply_geometry(loaded.geometry or Geometry(), cfg), None
    if cfg.strain.enabled:  # a geometry the strain step would refuse fails before the phasing
        geom, voxel = strain_geometry(cfg, loaded.geometry or Geometry(), loaded.data.shape, note)

    t = time.perf_counter()
    mask = build_mask(cfg, item, loaded, note)
    inputs += [prov.input_record(cfg.path(f), "mask") for f in (cfg.mask.file, item.mask) if f]
    timings["mask"] = time.perf_counter() - t
    st.done("mask")

    intensity, phase_mask, was_filled = np.asarray(loaded.data), mask, False
    if "inpaint" in steps:
        t = time.perf_counter()
        filled = fill_gaps(cfg, intensity, mask, note, st.sub("inpaint"), cancel)
        if filled is not None:
            intensity, was_filled = filled, True
            phase_mask = mask if cfg.inpaint.keep_mask else None
        timings["inpaint"] = time.perf_counter() - t
        st.done("inpaint")
    inputs += _model_inputs(cfg)

    t = time.perf_counter()
    rec = phase_scan(cfg, intensity, phase_mask, backend, note, st.sub("phase"), cancel, filled=was_filled)
    timings["phase"] = time.perf_counter() - t
    note(f"phase: LLK {_fmt(rec.llk)}, free LLK {_fmt(rec.llk_free)}, support "
         f"{int(np.count_nonzero(rec.support))} voxels, {timings['phase']:.2f} s")
    st.done("phase")

    strain = None
    if cfg.strain.enabled:
        t = time.perf_counter()
        strain = strain_of(cfg, rec, geom, voxel, st.sub("strain"), cancel)
        timings["strain"] = time.perf_counter() - t
        for n in strain.notes:
            note(f"strain: note: {n}")
        note(f"strain: {strain.frame} frame, voxel ({', '.join(f'{v:.3g}' for v in strain.voxel_size)}) nm "
             f"in {timings['strain']:.2f} s")
        st.done("strain")

    resolved = scan_config(cfg, item, backend)
    results = {"method": rec.method, "llk": _num(rec.llk), "llk_free": _num(rec.llk_free),
               "recipe": rec.meta.get("recipe", ""), "support_voxels": int(np.count_nonzero(rec.support))}
    for k in ("best_run", "first_mode_weight", "chosen_candidate"):
        if k in rec.meta:
            results[k] = rec.meta[k]
    t = time.perf_counter()
    block = prov.build(inputs, timings, results, started=started)
    rec = dataclasses.replace(rec, meta={**rec.meta, "provenance": block})
    protect = [r["path"] for r in inputs]
    files = write_outputs(cfg, out, rec, geom, strain, prov.sidecar_text(resolved, block), protect)
    timings["export"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all
    block = prov.build(inputs, timings, results, started=started)
    files["sidecar"] = prov.write_text(out / prov.SIDECAR, prov.sidecar_text(resolved, block), protect)
    note(f"done in {timings['total']:.2f} s")
    files["log"] = prov.write_text(out / LOG, "\n".join(lines) + "\n", protect)
    st.done("export")
    tf_after = "keras" in sys.modules
    return ScanResult(item=item, out_dir=out, reconstruction=rec, strain=strain, geometry=geom, files=files,
                      timings=timings, provenance=block, config=resolved, log=lines,
                      cold_start=(not tf_before) if tf_after else None)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"
