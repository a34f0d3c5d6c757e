"""Work of the Data & mask widget, run in the worker thread (``_worker.run_job``).

Plain functions: arrays and paths in, arrays and layer-data tuples out; they never touch a layer. The
science is in ``core`` (``io.read``, ``masks.*``, ``geometry.detector_voxel_size``); these only chain it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import BCDIError
from ..core.progress import report

LOG_SUFFIX = " log10"
AXIS_WORDS = {0: "frames", 1: "rows", 2: "cols"}


def describe_mask(mask: np.ndarray) -> str:
    """One line: masked voxels and the gap planes (``core.masks.gap_runs``)."""
    from ..core.masks import gap_runs

    n = int(np.count_nonzero(mask))
    if n == 0:
        return "mask empty"
    runs = gap_runs(mask) if mask.ndim == 3 else []
    planes = ", ".join(f"{AXIS_WORDS[a]} {s}-{e - 1}" for a, s, e in runs)
    frac = 100.0 * n / mask.size
    return f"{n} masked voxels ({frac:.2f} %)" + (f"; gap planes: {planes}" if planes else "")


def load_data(path: str, scan: str | None, log_view: bool, *, progress=None, cancel=None) -> dict:
    from .. import _reader
    from ..core import io

    p = Path(path)
    report(progress, cancel, 0, 3)
    scans = io.list_scans(p)
    loaded = io.read(p, scan=scan or None)
    report(progress, cancel, 1, 3)
    name = p.name if p.is_dir() else p.stem.removesuffix(".edf")
    if scans:
        name = f"{name} scan {loaded.meta.get('scan', scan or scans[0])}"
    if loaded.kind == "object":
        return {"layers": _reader._object_layers(loaded, name, p), "kind": "object", "notes": []}
    notes = []
    report(progress, cancel, 2, 3)
    layers = _reader._intensity_layers(loaded, name, p)
    extra = {k: layers[0][1][k] for k in ("scale", "units") if k in layers[0][1]}
    if loaded.geometry.is_complete_for_voxel_size() and not extra:
        notes.append("geometry incomplete or inconsistent: scale left at 1 voxel")
    if log_view:
        logged = np.log10(1.0 + np.maximum(loaded.data, 0), dtype=np.float32)
        top = float(logged.max()) if logged.size else 1.0
        meta = {"bcdi": {"kind": "log_intensity", "source": str(p), "of": name}}
        layers.append((logged, {"name": name + LOG_SUFFIX, "colormap": "magma", "rendering": "mip",
                                "contrast_limits": (0.0, top if top > 0 else 1.0), "metadata": meta, **extra},
                       "image"))
    report(progress, cancel, 3, 3)
    return {"layers": layers, "kind": "intensity", "notes": notes}


def compute_mask(action: str, data: Any, current: np.ndarray | None, params: dict, *,
                 progress=None, cancel=None) -> dict:
    """Compute the new mask of ``action`` (preset | detect | dilate | import) and its one-line summary."""
    from ..core import io, masks

    report(progress, cancel, 0, 2)
    shape = tuple(int(s) for s in np.shape(data))
    if action == "preset":
        new = masks.preset_mask(params["preset"], shape, roi_offset=params["roi_offset"])
        out = masks.union(current, new)
    elif action == "detect":
        new = masks.detect_gaps(np.asarray(data))
        out = masks.union(current, new)
    elif action == "dilate":
        if current is None or not current.any():
            raise BCDIError("nothing to dilate: the gap mask is empty; apply a preset, detect or paint "
                            "gaps first")
        out = new = masks.dilate(current, params["n"], axes=params.get("axes"))
    elif action == "import":
        new = io.read_mask(params["path"], shape)
        out = masks.union(current, new)
    else:  # pragma: no cover - programming error
        raise ValueError(f"unknown mask action {action!r}")
    report(progress, cancel, 1, 2)
    summary = describe_mask(out)
    added = int(np.count_nonzero(new)) if action != "dilate" else int(out.sum()) - int(current.sum())
    report(progress, cancel, 2, 2)
    return {"mask": out, "summary": summary, "added": added, "new_summary": describe_mask(new)}


def write_mask(path: str, mask: np.ndarray, protect: list, *, progress=None, cancel=None) -> str:
    from ..core.io import write_cxi_mask, write_npz

    report(progress, cancel, 0, 1)
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix == ".npz":
        write_npz(out, protect=protect, mask=mask)
    elif suffix == ".cxi":
        write_cxi_mask(out, mask, protect=protect)
    else:
        raise BCDIError(f"{out}: masks are exported as .npz (key 'mask') or .cxi; choose one of these "
                        "suffixes")
    report(progress, cancel, 1, 1)
    return str(out)
