"""``bcdi-dl aliens IN --out MASK.npz``: find parasitic scattering by clustering and write its mask.

DBSCAN (scikit-learn) on the bright voxels of the log-scaled pattern, the Bragg peak's cluster set aside
and split at rising levels, clusters scored by centro-asymmetry about the peak, by prominence and by
Friedel contrast (``core.aliens``, after Bellec et al., J. Synchrotron Rad. 33, 2026). MASK holds ``mask``
(uint8, 1 = alien voxel) alone, so that every reader takes it as a mask. One line per cluster is printed,
with its asymmetry, prominence and Friedel contrast.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..core.aliens import DEFAULTS
from ..core.errors import BCDIError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "aliens",
        help="mask parasitic scattering (streaks, spots) found by DBSCAN clustering",
        description="Find alien clusters of a 3D pattern and write their mask (1 = alien).",
    )
    p.add_argument("input", metavar="IN", help="intensity file (npy, npz, tiff, frames folder, CXI, BLISS, SPEC)")
    p.add_argument("--out", required=True, help="output mask, .npz (key mask) or .cxi")
    p.add_argument("--eps", type=float, default=DEFAULTS["eps"],
                   help=f"DBSCAN radius in voxels (default {DEFAULTS['eps']})")
    p.add_argument("--min-samples", type=int, default=DEFAULTS["min_samples"],
                   help=f"DBSCAN core-point count (default {DEFAULTS['min_samples']})")
    p.add_argument("--log-threshold", type=float, default=DEFAULTS["log_threshold"],
                   help=f"bright voxels: log10(1+I) >= this x max (default {DEFAULTS['log_threshold']})")
    p.add_argument("--asymmetry", type=float, default=DEFAULTS["asymmetry_threshold"],
                   help=f"centro-asymmetry of a proposed cluster, 0-2 (default {DEFAULTS['asymmetry_threshold']})")
    p.add_argument("--prominence", type=float, default=DEFAULTS["prominence_threshold"],
                   help=f"decades above its surroundings (default {DEFAULTS['prominence_threshold']})")
    p.add_argument("--contrast", metavar="T", default=str(DEFAULTS["contrast_threshold"]),
                   help="Friedel contrast of a proposed cluster: its core's log Friedel ratio above that of "
                        "its surroundings, decades; 0 or off: no contrast test "
                        f"(default {DEFAULTS['contrast_threshold']})")
    p.add_argument("--mask", metavar="M", help="invalid voxels (1) to ignore, e.g. the detector gaps")
    p.add_argument("--scan", help="scan of a BLISS master or SPEC file")
    p.add_argument("--all", action="store_true", help="list every cluster, not only the best 20")
    p.set_defaults(func=run)


def contrast_threshold(text: str) -> float:
    """``--contrast``: decades >= 0, or ``off`` (= 0, the test off); anything else is a one-line error."""
    value = str(text).strip()
    if value.lower() == "off":
        return 0.0
    try:
        t = float(value)
    except ValueError:
        t = float("nan")
    if not (math.isfinite(t) and t >= 0):
        raise BCDIError(f"--contrast {text!r}: the Friedel-contrast threshold is decades >= 0, or 'off' "
                        f"(default {DEFAULTS['contrast_threshold']})")
    return t


def run(args: argparse.Namespace) -> int | None:
    import numpy as np

    from ..core.aliens import find_aliens
    from ..core.io import read, read_mask, write_cxi_mask, write_npz
    from ._progress import progress_bar

    contrast = contrast_threshold(args.contrast)  # before any work
    out = Path(args.out)
    if out.suffix.lower() not in (".npz", ".cxi"):
        raise BCDIError(f"output {out} must end in .npz or .cxi")
    loaded = read(args.input, scan=args.scan)
    if loaded.kind != "intensity":
        raise BCDIError(f"{args.input} holds a reconstruction, not an intensity: give the diffraction data")
    mask = loaded.mask
    if args.mask:
        extra = read_mask(args.mask, loaded.data.shape)
        mask = extra if mask is None else ((mask != 0) | (extra != 0)).astype(np.uint8)
    with progress_bar("aliens") as bar:
        res = find_aliens(loaded.data, mask, eps=args.eps, min_samples=args.min_samples,
                          log_threshold=args.log_threshold, asymmetry_threshold=args.asymmetry,
                          prominence_threshold=args.prominence, contrast_threshold=contrast, progress=bar)
    ranked = sorted(res.clusters, key=lambda c: (not c.proposed, -(np.nan_to_num(c.asymmetry) * c.prominence)))
    shown = ranked if args.all else [c for c in ranked if c.proposed] + [c for c in ranked if not c.proposed][:20]
    for c in shown:
        print(c.describe())
    if len(shown) < len(ranked):
        print(f"... {len(ranked) - len(shown)} more clusters below the thresholds (--all lists them)")
    protect = [args.input] + ([args.mask] if args.mask else [])
    alien = (res.mask != 0).astype(np.uint8)
    if out.suffix.lower() == ".npz":
        write_npz(out, protect=protect, mask=alien)
    else:
        write_cxi_mask(out, alien, protect=protect)
    print(f"{out}: {len(res.proposed)} alien clusters, {int(alien.sum())} voxels masked "
          f"(peak at {tuple(res.peak)}, {len(res.clusters)} clusters scored)")
    return 0
