"""Work of the Results widget that runs in the worker thread (no Qt, no layers): reading a reconstruction
file, comparing reconstructions. Sources are plain :class:`Source` records built on the main thread from
copies of the layers' arrays, so a worker never touches a layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

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
                  meta=dict(rec.meta))


def _finite(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _fit_metrics(src: Source, obj: np.ndarray, support: np.ndarray) -> dict:
    """LLK, χ² and PRTF resolution of ``obj`` against the source's intensity (None when not known)."""
    from ..core import metrics

    out = {"llk": _finite(src.llk), "llk_free": _finite(src.llk_free), "chi2": None, "prtf_nm": None,
           "prtf_voxels": None}
    i_obs = src.intensity
    if i_obs is None or i_obs.shape != obj.shape:
        return out
    calc = metrics.calc_intensity(obj)
    calc = calc * metrics.scale_factor(i_obs, calc, src.mask)
    out["chi2"] = metrics.chi2(i_obs, calc, src.mask)
    if out["llk"] is None:
        out["llk"] = metrics.llk(i_obs, calc, src.mask, n_support=int(np.count_nonzero(support)))
    p = metrics.prtf(i_obs, obj, src.mask, voxel_size=src.voxel_size)
    out["prtf_voxels"] = p.resolution_voxels
    out["prtf_nm"] = None if p.resolution_nm is None else float(np.mean(p.resolution_nm))
    return out


def _support_of(src: Source) -> np.ndarray:
    if src.support is not None:
        return np.asarray(src.support) != 0
    m = np.abs(src.obj)
    return m >= 0.3 * m.max()


def compare_sources(sources: list, *, progress=None, cancel=None) -> dict:
    """Register every source onto the first (twin, translation, global phase) and measure them.

    Returns ``{"rows": [dict per source], "aligned": [complex64], "supports": [uint8],
    "differences": [float32 phase difference to the first inside the common support, NaN outside]}``
    (the first source's difference is None).
    """
    from ..core import metrics
    from ..core.postprocess import invert

    if len(sources) < 2:
        raise BCDIError("choose at least two reconstructions to compare (tick them in the list)")
    ref = sources[0]
    shape = ref.obj.shape
    for s in sources[1:]:
        if s.obj.shape != shape:
            raise BCDIError(f"'{s.name}' has shape {s.obj.shape}, '{ref.name}' {shape}: compare reconstructions "
                            "of one data set (same array shape)")
    total = len(sources)
    report(progress, cancel, 0, total)
    ref_sup = _support_of(ref)
    rows, aligned, supports, diffs = [], [], [], []
    for k, src in enumerate(sources):
        sup = _support_of(src)
        if k == 0:
            obj, al_sup = np.asarray(src.obj, np.complex64), sup
            cmp = {"error": 0.0, "phase_rmse": 0.0, "twin": False, "shift": (0.0, 0.0, 0.0), "phase_offset": 0.0}
            diffs.append(None)
        else:
            cmp = metrics.compare(ref.obj, src.obj, ref_sup, sup)
            obj = metrics.register(ref.obj, src.obj, scale=False)
            s = invert(sup) if cmp["twin"] else sup
            shift = np.asarray(cmp["shift"])
            if np.allclose(shift, np.round(shift)):
                al_sup = np.roll(s, tuple(round(v) for v in shift), axis=(0, 1, 2))
            else:
                al_sup = ndimage.shift(s.astype(np.float32), shift, order=1, mode="grid-wrap") >= 0.5
            common = ref_sup & al_sup
            d = np.angle(ref.obj * np.conj(obj))
            if common.any():  # remove the mean difference (the global phase is arbitrary)
                d = np.angle(np.exp(1j * (d - np.angle(np.sum(np.exp(1j * d[common]))))))
            diffs.append(np.where(common, d, np.nan).astype(np.float32))
        row = {"name": src.name, "method": src.method, "sharpness": metrics.sharpness(obj, al_sup),
               "error": float(cmp["error"]), "phase_rmse": float(cmp["phase_rmse"]), "twin": bool(cmp["twin"]),
               "shift": tuple(float(v) for v in cmp["shift"]), "phase_offset": float(cmp["phase_offset"])}
        row.update(_fit_metrics(src, obj, al_sup))
        rows.append(row)
        aligned.append(obj)
        supports.append(np.asarray(al_sup, np.uint8))
        report(progress, cancel, k + 1, total)
    return {"rows": rows, "aligned": aligned, "supports": supports, "differences": diffs}
