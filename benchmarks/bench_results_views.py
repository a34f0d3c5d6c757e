"""Speed of the Results views on a 128³ result (issue 20 goals). Fixed seed, one process.

A simulated 128³ strained crystal (seed 20, 3π, oversampling 3) post-processed as the Results dock does
(``core.postprocess.postprocess``: phase, displacement, strain in nm units), then, each ``--repeat`` times:

* **surface**: ``core.surface.result_surface`` (marching cubes at 0.3 of the maximum, in nm, strain sampled
  at the vertices, symmetric colour limits): what the dock's worker does when the threshold moves. Baseline
  in the same process: scikit-image's ``marching_cubes`` alone on the same modulus and level, so the ratio
  says what the colouring costs on top of the isosurface itself. Goal: < 1 s.
* **report**: ``core.report.write_report`` to a PNG and to a PDF (slices, coloured isosurface, histogram,
  LLK history, PRTF, provenance; matplotlib Agg). Baseline: the same page's figure saved with only its three
  slices panel (``draw_slices``), i.e. the cost of a bare matplotlib page of this size. Goal: < 5 s.

Prints medians (and min–max) in seconds and the ratios. Usage:
``python benchmarks/bench_results_views.py [--size 128] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SEED = 20
VOXEL = (6.0, 5.0, 4.0)


def make_result(size: int):
    from napari_bcdi_dl.core.postprocess import postprocess
    from napari_bcdi_dl.core.simulate import simulate_pattern

    sim = simulate_pattern(size, seed=SEED, phase_range=3.0, oversampling=3.0, max_counts=1e7)
    result = postprocess(sim.obj, sim.support, voxel_size_nm=VOXEL, hkl=(1, 1, 1), lattice_nm=0.392)
    return sim, result


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def fmt(ts: list[float]) -> str:
    return f"{statistics.median(ts):.3f} s (min {min(ts):.3f}, max {max(ts):.3f})"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from skimage.measure import marching_cubes

    from napari_bcdi_dl.core import metrics
    from napari_bcdi_dl.core.report import PAGE_IN, PNG_DPI, default_provenance, draw_slices, write_report
    from napari_bcdi_dl.core.surface import result_surface

    t0 = time.perf_counter()
    sim, result = make_result(args.size)
    print(f"{args.size}³ result made in {time.perf_counter() - t0:.1f} s; "
          f"support {int(np.count_nonzero(result.support))} voxels")

    modulus = np.asarray(result.modulus, dtype=np.float32)
    level = 0.3 * float(modulus.max())
    base = timed(lambda: marching_cubes(modulus, level, spacing=VOXEL), args.repeat)
    surf = timed(lambda: result_surface(result, "strain", 0.3), args.repeat)
    n_faces = result_surface(result, "strain", 0.3).n_faces
    print(f"marching_cubes alone: {fmt(base)}")
    print(f"result_surface (strain): {fmt(surf)}; {n_faces} faces; "
          f"ratio to marching cubes {statistics.median(surf) / statistics.median(base):.2f}x; goal < 1 s")

    prtf = metrics.prtf(sim.intensity, sim.obj, voxel_size=VOXEL)
    history = [{"iteration": i, "llk": 5.0 / i + 0.5, "llk_free": 5.5 / i + 0.55} for i in range(1, 600, 10)]
    prov = default_provenance(source="simulated", method="dl", recipe="HIO**200, ER**200")
    with tempfile.TemporaryDirectory() as tmp:
        def bare_page():
            fig = Figure(figsize=PAGE_IN)
            draw_slices(fig, fig.add_gridspec(1, 1)[0, 0], result)
            FigureCanvasAgg(fig)
            fig.savefig(Path(tmp) / "bare.png", dpi=PNG_DPI)

        bare = timed(bare_page, args.repeat)
        png = timed(lambda: write_report(Path(tmp) / "r.png", result, history=history, prtf=prtf,
                                         provenance=prov), args.repeat)
        pdf = timed(lambda: write_report(Path(tmp) / "r.pdf", result, history=history, prtf=prtf,
                                         provenance=prov), args.repeat)
    print(f"bare page (slices only, PNG): {fmt(bare)}")
    print(f"report PNG: {fmt(png)}; ratio to the bare page {statistics.median(png) / statistics.median(bare):.2f}x; "
          f"goal < 5 s")
    print(f"report PDF: {fmt(pdf)}; ratio to the bare page {statistics.median(pdf) / statistics.median(bare):.2f}x")


if __name__ == "__main__":
    main()
