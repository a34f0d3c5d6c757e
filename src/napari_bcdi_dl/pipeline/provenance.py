"""Provenance: what produced a result, stored with it so that it can be reproduced.

A run writes ``provenance.yaml`` beside its outputs. The file is a complete configuration for that one scan
(every key resolved, paths absolute, the array backend that actually ran) followed by a ``provenance:``
block: package version, Python/NumPy versions, host, command, the SHA-256 of every input file (and of the
model weights for a DL step), the timings of each step and the figures of merit. ``bcdi-dl run
provenance.yaml`` reproduces the same arrays. The same block is stored in the outputs: in
``reconstruction.npz`` (``meta_json["provenance"]``), in ``reconstruction.cxi`` (``meta_json`` and the full
YAML text at ``/entry_1/image_1/process_1/configuration/pipeline_yaml``) and in ``strain.npz``
(``meta_json["provenance"]``, the YAML text in ``meta_json["pipeline_yaml"]``).
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.errors import BCDIError
from .config import dump_yaml

SIDECAR = "provenance.yaml"
CXI_DATASET = "entry_1/image_1/process_1/configuration/pipeline_yaml"
_CHUNK = 1 << 20


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file, or of a folder (every file below it: relative name and content, sorted)."""
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(str(f.relative_to(p)).encode() + b"\0")
            h.update(sha256_of(f).encode())
        return h.hexdigest()
    with open(p, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def input_record(path: str | Path, role: str) -> dict:
    """``{role, path, sha256, bytes}`` of an input file or folder."""
    p = Path(path)
    size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    return {"role": role, "path": str(p), "sha256": sha256_of(p), "bytes": int(size)}


def _plain(v):
    """JSON/YAML-ready copy: numpy scalars to Python, tuples to lists, paths to strings."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def build(inputs: Iterable[dict], timings: dict, results: dict, *, started: float) -> dict:
    """The ``provenance:`` block.

    Parameters
    ----------
    inputs : :func:`input_record` of every input (scan, masks, model weights).
    timings : seconds per step.
    results : figures of merit (LLK, free LLK, method, recipe run...).
    started : ``time.time()`` at the start of the run.
    """
    return _plain({
        "package": "napari-bcdi-dl",
        "version": __version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "host": platform.node(),
        "pid": os.getpid(),
        "command": " ".join(sys.argv),
        "inputs": list(inputs),
        "timings_s": {k: round(float(v), 4) for k, v in timings.items()},
        "results": results,
    })


def sidecar_text(config: dict, provenance: dict) -> str:
    """The sidecar YAML: the configuration of one scan, then its provenance."""
    head = ("# napari-bcdi-dl run: the configuration that produced this folder, then its provenance.\n"
            "# 'bcdi-dl run provenance.yaml --out DIR' reproduces the same arrays.\n")
    return head + dump_yaml({**_plain(config), "provenance": provenance})


def write_text(path: str | Path, text: str, protect: Iterable = ()) -> Path:
    """Write a text file atomically (never over an input)."""
    from ..core.io.atomic import atomic_path

    out = Path(path)
    with atomic_path(out, protect) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return out


def embed_in_cxi(path: str | Path, text: str) -> None:
    """Store the sidecar text in a CXI result file (``process_1/configuration/pipeline_yaml``)."""
    import h5py

    with h5py.File(path, "a") as f:
        if CXI_DATASET in f:
            del f[CXI_DATASET]
        f.create_dataset(CXI_DATASET, data=text)


def read_provenance(path: str | Path) -> dict:
    """The provenance stored in a sidecar YAML, a reconstruction (npz, CXI) or a strain npz.

    Raises
    ------
    BCDIError
        The file holds no provenance of this package.
    """
    import json

    import yaml

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        prov = data.get("provenance") if isinstance(data, dict) else None
    elif suffix == ".npz":
        with np.load(p, allow_pickle=False) as f:
            prov = json.loads(str(f["meta_json"])).get("provenance") if "meta_json" in f.files else None
    elif suffix == ".cxi":
        import h5py

        with h5py.File(p, "r") as f:
            prov = (yaml.safe_load(f[CXI_DATASET][()].decode()) or {}).get("provenance") \
                if CXI_DATASET in f else None
    else:
        prov = None
    if not prov:
        raise BCDIError(f"{p}: no napari-bcdi-dl provenance found; give a provenance.yaml or an output of "
                        "'bcdi-dl run' / 'bcdi-dl batch'")
    return prov
