"""How much of the narrow-gap deficit of the inpainting model is a smooth bias that context could remove
(issue 21, item 2; a measurement, no training).

For each case (the measured pattern against its counts; like-measured patterns 0 and 1 of
``inpaint_quality.py`` against their noise-free intensity) and each gap through the peak (3- and 6-px lines
along the rows, 3-px cross), the error ``e = log(1 + fill) − log(1 + truth)`` of ``dl`` (the shipped model,
step 4), ``linear`` and ``cubic`` (PCHIP) in the gap is split into its mean per distance from the
peak (1-voxel bins: the smooth, radial bias that a wider view of the pattern's fall-off could predict) and
the rest. Printed: gap PCC, mean error, MSE, the share of the MSE that the radial bias carries, and the gap
PCC after subtracting a radial bias estimated on the *other* half of the gap (voxels with z below the
peak correct those above and the reverse: no voxel corrects itself), for every method.

    nice -n 5 .venv/bin/python benchmarks/inpaint_narrow_bias.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inpaint_quality import REAL, gap_mask, like_measured, peak_centre

from napari_bcdi_dl.core.gaps import gap_pcc
from napari_bcdi_dl.models.inpaint import inpaint

METHODS = ("dl", "linear", "cubic")
GAPS = (("line", 3), ("line", 6), ("cross", 3))


def radial_bins(mask: np.ndarray, centre) -> np.ndarray:
    """Integer distance from the peak of every gap voxel (inside a gap a few voxels thick this is the
    in-plane distance, to within the thickness)."""
    idx = np.nonzero(mask)
    return np.rint(np.sqrt(sum((i - c) ** 2 for i, c in zip(idx, centre)))).astype(int)


def split_bias(e: np.ndarray, r: np.ndarray, half: np.ndarray) -> tuple[float, np.ndarray]:
    """Share of ``Σe²`` carried by the mean of ``e`` per bin ``r``, and ``e`` minus the bin means of the other
    ``half`` (cross-validated correction)."""
    nb = int(r.max()) + 1

    def means(sel):
        s = np.bincount(r[sel], e[sel], minlength=nb)
        n = np.bincount(r[sel], minlength=nb)
        return np.where(n > 0, s / np.maximum(n, 1), 0.0)

    share = float(np.sum(means(np.ones_like(half))[r] ** 2) / np.sum(e**2))
    corrected = e.copy()
    corrected[half] -= means(~half)[r[half]]
    corrected[~half] -= means(half)[r[~half]]
    return share, corrected


def cases():
    if REAL.exists():
        d = np.load(REAL)["data"].astype(np.float32)
        yield "measured", d, d
    for i in (0, 1):
        e, noisy = like_measured(i)
        yield f"like-measured {i}", noisy, e


def main() -> None:
    from napari_bcdi_dl.models.registry import load_model

    model = load_model("inpaint")
    print("| case | gap | method | PCC | mean error | MSE | radial-bias share of MSE | PCC, radial bias removed |\n"
          "|---|---|---|---|---|---|---|---|")
    for name, counts, truth in cases():
        c = peak_centre(truth)
        for kind, w in GAPS:
            m = gap_mask(truth.shape, w, kind, c).astype(bool)
            data = np.where(m, 0, counts).astype(np.float32)
            r = radial_bins(m, c)
            half = np.nonzero(m)[0] < c[0]
            lt = np.log1p(np.maximum(truth[m], 0).astype(np.float64))
            for meth in METHODS:
                f = inpaint(data, m, method=meth, model=model if meth == "dl" else None)
                lf = np.log1p(np.maximum(f[m], 0).astype(np.float64))
                e = lf - lt
                share, ec = split_bias(e, r, half)
                out = f.copy()
                out[m] = np.expm1(lt + ec)
                print(f"| {name} | {kind} {w} px | {meth} | {gap_pcc(f, truth, m):.4f} | {e.mean():+.4f} | "
                      f"{np.mean(e ** 2):.4f} | {share:.2f} | {gap_pcc(out, truth, m):.4f} |", flush=True)


if __name__ == "__main__":
    main()
