#!/usr/bin/env python3
"""Check what a GPU run brought back: the export loads here and predicts what the GPU side predicted.

    python scripts/gpu_check_export.py OUTDIR [--name phase_unet64] [--atol 2e-3] [--rtol 1e-3]

Joins ``NAME.keras.part0, .part1 ...`` into ``NAME.keras`` first when the export came back in parts. Then
loads ``NAME.keras`` through ``models.registry.load_model`` under this process's Keras backend (TensorFlow
unless ``KERAS_BACKEND`` says otherwise), checks that every layer computes in float32 (no mixed-precision
policy left in the file), predicts the inputs of ``reference.npz`` and compares with the phases saved there
by ``scripts/gpu_train_phase.py``. Prints one JSON line; exit status 1 when the predictions are not finite
or differ by more than ``atol + rtol * max|φ|`` (radians).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))


def join_parts(folder: Path, name: str) -> Path:
    """``NAME.keras`` in ``folder``, joined from its ``.partN`` files when it came back in parts."""
    path = folder / f"{name}.keras"
    parts = sorted(folder.glob(f"{name}.keras.part*"), key=lambda p: int(p.name.rsplit("part", 1)[1]))
    if parts and not path.exists():
        path.write_bytes(b"".join(p.read_bytes() for p in parts))
    return path


def check(folder: str | Path, name: str | None = None, atol: float = 2e-3, rtol: float = 1e-3) -> dict:
    import numpy as np

    from napari_bcdi_dl.core.errors import BCDIError
    from napari_bcdi_dl.models._keras import keras
    from napari_bcdi_dl.models.registry import load_model
    from napari_bcdi_dl.models.wca import wca_numpy

    folder = Path(folder)
    ref_path = folder / "reference.npz"
    if not ref_path.is_file():
        raise BCDIError(f"{ref_path} is missing: give the output folder of scripts/gpu_train_phase.sh")
    with np.load(ref_path) as f:
        x, saved = f["x"].astype(np.float32), f["phase"].astype(np.float32)
        saved_backend, model_file = str(f["backend"]), str(f["model"])
    name = name or model_file.removesuffix(".keras")
    path = join_parts(folder, name)
    model = load_model(str(path), fresh=True)
    policies = sorted({layer.dtype_policy.name for layer in model.layers})
    pred = np.asarray(model.predict_on_batch(x[..., None]), dtype=np.float32)[..., 0]
    diff = float(np.max(np.abs(pred - saved))) if pred.shape == saved.shape else float("inf")
    tol = atol + rtol * float(np.max(np.abs(saved)))
    out = {
        "model": path.name, "mib": round(path.stat().st_size / 2**20, 2), "backend": keras().backend.backend(),
        "saved_backend": saved_backend, "input_shape": list(model.input_shape), "policies": policies,
        "n": len(x), "finite": bool(np.all(np.isfinite(pred))), "max_abs_diff": diff, "tolerance": tol,
        "wca_between": [float(wca_numpy(saved[i], pred[i], x[i])) for i in range(len(x))] if diff < 1e9 else None,
    }
    out["ok"] = out["finite"] and diff <= tol and policies == ["float32"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="the folder the GPU run wrote ($OUT, fetched here)")
    p.add_argument("--name", default=None, help="model file stem (default: the one reference.npz names)")
    p.add_argument("--atol", type=float, default=2e-3)
    p.add_argument("--rtol", type=float, default=1e-3)
    a = p.parse_args(argv)
    from napari_bcdi_dl.core.errors import BCDIError

    try:
        res = check(a.folder, a.name, a.atol, a.rtol)
    except BCDIError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(res), flush=True)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
