"""Work of the Results widget that runs in the worker thread (no Qt, no layers): reading a reconstruction
file, post-processing one with its coloured isosurface and slice panel, rebuilding the surface, writing the
report, comparing reconstructions. Sources are plain :class:`Source` records built on the main thread from
copies of the layers' arrays, so a worker never touches a layer. The science is in ``core`` (postprocess,
surface, metrics, report); these only chain it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import BCDIError
from ..core.progress import report
from ..core.types import Geometry, Reconstruction


@dataclass
class Source:
    """One reconstruction to post-process or compare (arrays are private copies)."""

    name: str
    obj: np.ndarray
    support: np.ndarray | None = None
    geometry: Geometry | None = None
    voxel_size: tuple | None = None
    llk: float | None = None
    llk_free: float | None = None
    method: str = "unknown"
    origin: str = ""  # layer name or file path
    path: str | None = None  # the file it was read from (never written over)
    intensity: np.ndarray | None = None  # the data it was phased from, when known
    mask: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    history: list = field(default_factory=list)  # the phasing's LLK records

    def reconstruction(self) -> Reconstruction:
        meta = dict(self.meta)
        if self.voxel_size is not None:
            meta["voxel_size_nm"] = tuple(float(v) for v in self.voxel_size)
        support = self.support if self.support is not None else np.ones(self.obj.shape, np.uint8)
        return Reconstruction(obj=self.obj, support=support, llk=self.llk, llk_free=self.llk_free,
                              method=self.method, meta=meta)


def read_source(path: str, *, progress=None, cancel=None) -> Source:
    """Read a reconstruction file (CXI/npz of PyNX, cdiutils or this project) into a :class:`Source`."""
    from ..core import io

    report(progress, cancel, 0, 1)
    p = Path(path)
    loaded = io.read(p)
    if loaded.kind != "object":
        raise BCDIError(f"{p.name} holds diffraction data, not a reconstruction: phase it first, or choose "
                        "a result file (PyNX/cdiutils CXI or npz)")
    rec = io.reconstruction_from(loaded)
    vs = loaded.meta.get("voxel_size_nm")
    report(progress, cancel, 1, 1)
    return Source(name=p.stem, obj=np.asarray(rec.obj, np.complex64), support=np.asarray(rec.support, np.uint8),
                  geometry=loaded.geometry, voxel_size=tuple(vs) if vs is not None else None,
                  llk=rec.llk, llk_free=rec.llk_free, method=rec.method, origin=str(p), path=str(p),
                  meta=dict(rec.meta), history=list(rec.history or []))


def _complete_geometry(src: Source) -> tuple[Geometry | None, tuple | None, float | None]:
    """The source's geometry when it is complete (else None), and its hkl and lattice when both are known."""
    from ..core.geometry_checks import is_complete

    g = src.geometry
    hkl, lattice = (g.hkl, g.lattice_nm) if g is not None else (None, None)
    if hkl is None or lattice is None:
        hkl = lattice = None
    return (g if is_complete(g) else None), hkl, lattice


@dataclass
class Processed:
    """What the Results widget shows of one post-processed reconstruction (computed in the worker).

    Attributes
    ----------
    result : the :class:`~napari_bcdi_dl.core.postprocess.StrainResult`.
    surface : its isosurface coloured by the chosen field.
    slices : RGBA image of the 3 × 3 slices through the centre of mass (``core.report.slices_rgba``).
    centre : the centre of mass, (z, y, x) voxel indices of the result's grid.
    extent : (z, y, x) size (nm) of the crystal's bounding box.
    """

    result: object
    surface: object
    slices: np.ndarray | None
    centre: tuple
    extent: tuple


def view_of(result, *, field: str = "strain", threshold: float = 0.3, slices: bool = True, progress=None,
            cancel=None) -> Processed:
    """The coloured isosurface, the slice panel and the centre of mass of a post-processed result."""
    from ..core.postprocess import crop_slices
    from ..core.report import slices_rgba
    from ..core.surface import centre_of_mass, result_surface

    report(progress, cancel, 0, 3)
    surface = result_surface(result, field, threshold)
    report(progress, cancel, 1, 3)
    panel = slices_rgba(result) if slices else None
    report(progress, cancel, 2, 3)
    centre = tuple(float(c) for c in centre_of_mass(result.modulus, result.support))
    box = crop_slices(result.support, 0)
    extent = tuple(float((b.stop - b.start) * v) for b, v in zip(box, result.voxel_size))
    report(progress, cancel, 3, 3)
    return Processed(result=result, surface=surface, slices=panel, centre=centre, extent=extent)


def process_source(src: Source, geometry: Geometry | None, *, hkl=None, lattice_nm=None, voxel_size_nm=None,
                   field: str = "strain", threshold: float = 0.3, progress=None, cancel=None) -> Processed:
    """Job of *Post-process*: ``pipeline.steps.strain_step`` with the pipeline's strain settings (as
    ``bcdi-dl strain`` and ``bcdi-dl run``), then :func:`view_of` (one progress bar)."""
    from ..pipeline.steps import step_config, strain_step

    def first(done, total):
        report(progress, cancel, int(80 * done / max(total, 1)), 100)

    result = strain_step(step_config("Results dock"), src.obj, src.support, geometry, hkl=hkl,
                         lattice_nm=lattice_nm, voxel_size_nm=voxel_size_nm, progress=first, cancel=cancel)
    return view_of(result, field=field, threshold=threshold, cancel=cancel,
                   progress=lambda d, t: report(progress, cancel, 80 + int(20 * d / max(t, 1)), 100))


def surface_job(result, field: str, threshold: float, *, limits=None, progress=None, cancel=None):
    """Job of the *Iso threshold* slider and the *Colour by* choice: the surface alone."""
    from ..core.surface import result_surface

    report(progress, cancel, 0, 1)
    surf = result_surface(result, field, threshold, limits=limits)
    report(progress, cancel, 1, 1)
    return surf


def report_job(path: str, result, src: Source | None, *, threshold: float = 0.3, field: str = "strain",
               progress=None, cancel=None):
    """Job of *Report…*: the PRTF when the source's intensity is known, then ``core.report.write_report``."""
    from ..core import metrics
    from ..core.report import default_provenance, write_report

    prtf = None
    if src is not None and src.intensity is not None and src.intensity.shape == src.obj.shape:
        prtf = metrics.prtf(src.intensity, src.obj, src.mask, voxel_size=src.voxel_size)
    prov = default_provenance(source=None if src is None else (src.path or src.origin),
                              method=None if src is None else src.method,
                              recipe=None if src is None else src.meta.get("recipe"),
                              geometry=None if src is None else src.geometry,
                              llk=None if src is None else src.llk, llk_free=None if src is None else src.llk_free,
                              title=None if src is None else src.name)
    protect = [src.path] if src is not None and src.path else []
    return write_report(path, result, history=None if src is None else src.history, prtf=prtf, provenance=prov,
                        threshold=threshold, field=field, protect=protect, progress=progress, cancel=cancel)


def compare_sources(sources: list, *, field: str = "strain", threshold: float = 0.3, progress=None,
                    cancel=None) -> dict:
    """Register every source onto the first (twin, translation, global phase: ``core.metrics.register_to``),
    measure them (``core.metrics.fit_metrics``, ``sharpness``) and colour their isosurfaces by ``field``.

    Each registered object is post-processed on the reference's grid (no orthogonalisation: the surfaces,
    the difference and the table share one grid) and its isosurface coloured with colour limits shared by
    all (symmetric about 0).

    Returns ``{"rows": [dict per source], "aligned": [complex64], "supports": [uint8],
    "differences": [float32 phase difference to the first inside the common support, NaN outside],
    "surfaces": [ColouredSurface], "voxel_sizes": [(z, y, x) nm], "centre": the reference's centre of mass
    (voxel indices), "extent_voxels": its bounding box size}`` (the first source's difference is None).
    """
    from ..core import metrics
    from ..core.postprocess import postprocess
    from ..core.surface import result_surface

    if len(sources) < 2:
        raise BCDIError("choose at least two reconstructions to compare (tick them in the list)")
    ref = sources[0]
    shape = ref.obj.shape
    for s in sources[1:]:
        if s.obj.shape != shape:
            raise BCDIError(f"'{s.name}' has shape {s.obj.shape}, '{ref.name}' {shape}: compare reconstructions "
                            "of one data set (same array shape)")
    total = 2 * len(sources)
    report(progress, cancel, 0, total)
    ref_sup = metrics.support_or_threshold(ref.obj, ref.support)
    rows, aligned, supports, diffs, surfaces, voxels = [], [], [], [], [], []
    for k, src in enumerate(sources):
        sup = metrics.support_or_threshold(src.obj, src.support)
        if k == 0:
            obj, al_sup = np.asarray(src.obj, np.complex64), sup
            cmp = {"error": 0.0, "phase_rmse": 0.0, "twin": False, "shift": (0.0, 0.0, 0.0), "phase_offset": 0.0}
            diffs.append(None)
        else:
            cmp = metrics.register_to(ref.obj, src.obj, ref_sup, sup)
            obj, al_sup = cmp["aligned"], cmp["support"] != 0
            diffs.append(cmp["difference"])
        row = {"name": src.name, "method": src.method, "sharpness": metrics.sharpness(obj, al_sup),
               "error": float(cmp["error"]), "phase_rmse": float(cmp["phase_rmse"]), "twin": bool(cmp["twin"]),
               "shift": tuple(float(v) for v in cmp["shift"]), "phase_offset": float(cmp["phase_offset"])}
        fit = metrics.fit_metrics(obj, al_sup, src.intensity, src.mask, voxel_size=src.voxel_size,
                                  known_llk=src.llk, known_llk_free=src.llk_free)
        fit.pop("prtf")
        row.update(fit)
        rows.append(row)
        aligned.append(obj)
        supports.append(np.asarray(al_sup, np.uint8))
        report(progress, cancel, 2 * k + 1, total)
        geometry, hkl, lattice = _complete_geometry(src if src.geometry is not None else ref)
        vs = src.voxel_size or ref.voxel_size
        res = postprocess(obj, al_sup, geometry, hkl=hkl, lattice_nm=lattice, voxel_size_nm=vs,
                          orthogonalise=False if geometry is not None else None, cancel=cancel)
        surfaces.append(result_surface(res, field, threshold))
        voxels.append(tuple(float(v) for v in res.voxel_size))
        report(progress, cancel, 2 * k + 2, total)
    lim = max(s.limits[1] for s in surfaces)
    for s in surfaces:
        s.limits = (-lim, lim)
    from ..core.postprocess import crop_slices
    from ..core.surface import centre_of_mass

    centre = tuple(float(c) for c in centre_of_mass(aligned[0], supports[0]))
    box = crop_slices(supports[0], 0)
    extent = tuple(float(b.stop - b.start) for b in box)  # voxels
    return {"rows": rows, "aligned": aligned, "supports": supports, "differences": diffs, "surfaces": surfaces,
            "voxel_sizes": voxels, "centre": centre, "extent_voxels": extent}
