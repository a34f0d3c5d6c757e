"""``bcdi-dl classify IN [--json OUT]``: is there a dislocation in this crystal, and which kind?

Runs the shipped defect classifier (:mod:`napari_bcdi_dl.models.defects`, docs/defects.md) on one
diffraction pattern, before any phasing, and prints one line of class probabilities::

    IN: none 0.010  edge 0.952  screw 0.030  mixed 0.008  -> edge

Any readable 3D pattern works (the formats of ``core.io.read``). It is centred on its centre of mass and
cropped/padded to the model grid (64³) exactly as the DL phase pipeline does, without resampling: a larger
or non-cubic stack is cropped around the peak along its long axes and zero-padded along its short ones
(the line says so). Voxels of the file's mask (and of ``--mask``) are zero in the network input. A 2D
array, NaN/Inf counts or an empty pattern give a one-line error (exit status 2).

``--g-axis z|y|x``: the array axis along which the Bragg vector G lies, when it is known (simulations;
data in a crystal or lab frame turned so that G is along an axis). The pattern is then transposed so that
this axis is axis 0 and the G-aware model ``defects_gz`` is used, which tells edge from screw; without it
(G unknown) the G-random model ``defects`` is used, which detects dislocations but cannot tell edge from
screw (docs/defects.md). A measured detector-frame scan must be orthogonalised and turned first.

``--json OUT`` writes ``{"probabilities": {"none": p, "edge": p, "screw": p, "mixed": p}, "label": ...,
"input": ..., "shape": [...], "model_grid": 64, "model": ..., "g_axis": ...}`` (probabilities summing to 1),
atomically.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..core.errors import BCDIError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "classify",
        help="dislocation classifier: probabilities of none / edge / screw / mixed from a pattern",
        description="Class probabilities {none, edge, screw, mixed} of the dislocations of the crystal that "
                    "gave a 3D Bragg peak (the shipped 3D CNN, docs/defects.md), in one line.",
    )
    p.add_argument("input", metavar="IN", help="diffraction data (.npy, .npz, .tif, .cxi, frame folder, BLISS)")
    p.add_argument("--json", metavar="OUT", default=None, help="also write the probabilities to this JSON file")
    p.add_argument("--mask", metavar="M", help="gap / bad-voxel mask file (1 = invalid), added to IN's own")
    p.add_argument("--scan", help="scan of a BLISS file (e.g. 1.1)")
    p.add_argument("--detector", help="detector of a BLISS file")
    p.add_argument("--g-axis", default=None, metavar="AXIS",
                   help="z, y or x: the array axis along which G lies, if known; the pattern is turned so "
                        "that it is axis 0 and the G-aware model (defects_gz, tells edge from screw) is used")
    p.add_argument("--model", default=None,
                   help="model name or .keras file (default: defects, or defects_gz with --g-axis)")
    p.set_defaults(func=run)


def crop_note(shape, grid: int) -> str:
    """How a pattern of ``shape`` reaches the ``grid``³ model input (empty when it is already that)."""
    if tuple(shape) == (grid,) * 3:
        return ""
    parts = []
    for axis, n in zip("zyx", shape):
        if n > grid:
            parts.append(f"{axis} cropped {n}->{grid}")
        elif n < grid:
            parts.append(f"{axis} padded {n}->{grid}")
    return "centred on the peak, " + ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    from ..core.io import read, read_mask
    from ..core.io.atomic import atomic_path, check_output_path
    from ..models.defects import check_g_axis, model_for

    g_axis = check_g_axis(args.g_axis, "--g-axis")  # a bad axis is refused before anything is read
    model_name = args.model or model_for(g_axis)
    protect = [args.input] + ([args.mask] if args.mask else [])
    out = None
    if args.json:
        out = check_output_path(args.json, protect)
        if out.suffix.lower() != ".json":
            raise BCDIError(f"--json {out}: give a .json file name")
    loaded = read(args.input, scan=args.scan, detector=args.detector)
    if loaded.kind != "intensity":
        raise BCDIError(f"{args.input} holds a reconstruction ({loaded.kind}), not a diffraction pattern: "
                        "give the data")
    intensity = np.asarray(loaded.data)
    mask = None if loaded.mask is None else (np.asarray(loaded.mask) != 0)
    if args.mask:
        extra = read_mask(args.mask, intensity.shape) != 0
        mask = extra if mask is None else (mask | extra)
    from ..models.defects import LABELS, check_pattern, classify, model_grid
    from ..models.registry import load_model

    check_pattern(intensity, f"classify {Path(args.input).name}")  # one-line refusal before TF loads
    model = load_model(model_name)
    grid = model_grid(model)
    probs = classify(intensity, None if mask is None else mask.astype(np.uint8), model=model, g_axis=g_axis)
    label = max(probs, key=probs.get)
    note = crop_note(intensity.shape, grid)
    line = "  ".join(f"{k} {probs[k]:.3f}" for k in LABELS)
    g_note = f"G along {g_axis}, model {model_name}" if g_axis else ""
    notes = "; ".join(n for n in (note, g_note) if n)
    print(f"{args.input}: {line}  -> {label}" + (f"  ({notes})" if notes else ""))
    if out is not None:
        doc = {"probabilities": probs, "label": label, "input": str(args.input),
               "shape": [int(n) for n in intensity.shape], "model_grid": grid, "model": model_name,
               "g_axis": g_axis,
               "preprocessing": note or "none (already the model grid)"}
        with atomic_path(out, protect) as tmp:
            tmp.write_text(json.dumps(doc, indent=1))
    return 0
