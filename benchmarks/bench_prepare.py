"""Speed and memory of ``core.prepare.prepare`` on a detector-sized scan (issue 19). Fixed seed.

A 200 × 516 × 516 float32 stack (213 MB) as a Maxipix 2 × 2 sees it: a simulated 128³ strained Bragg peak
(1e7 photons at the maximum) in the middle of a Poisson background of 0.05 photons per pixel, the module gap
rows and columns at zero, 40 hot pixels and 30 dead pixels. ``prepare`` runs with the hot-pixel filter, the
dead pixels, the Maxipix gaps (pyFAI) and the automatic crop to the largest FFT-friendly size, then again with
``--bin 1 2 2`` and the alien search. Goal: < 30 s on this machine, peak memory ≤ 3 copies of the input (the
input itself counted): measured with tracemalloc (numpy's allocations during the call) in units of the
input's bytes, and as the growth of the process's peak resident memory (VmHWM, reset before the call).

(b) ``--xu``: the project's hand-written diffractometer geometry (``core.geometry.detector_frame``) against
xrayutilities (GPL, an optional extra: ``pip install xrayutilities``) on a few ID01 and 34-ID-C
configurations. xrayutilities' ``QConversion`` gets the same circles (its frame: x downstream, y outboard, z
up) and the detector's ``init_area``; its q of the array-centre pixel and, by central differences, of the
next frame / row / column give Q and the three columns of B. xrayutilities returns q in the sample frame and
the project in the laboratory frame at the central angle, so the comparison is on what no rotation changes:
the Gram matrix of (Q, b_rock, b_row, b_col) (lengths and angles, relative difference) and the triple product
det B (handedness).

Usage: ``python benchmarks/bench_prepare.py [--frames 200] [--skip-aliens] [--xu]``
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np

SEED = 19


def make_stack(frames: int = 200, n: int = 516) -> np.ndarray:
    from napari_bcdi_dl.core.simulate import simulate_pattern

    rng = np.random.default_rng(SEED)
    stack = rng.poisson(0.05, (frames, n, n)).astype(np.float32)
    sp = simulate_pattern(128, seed=SEED, field="gaussian_bumps", phase_range=2.0, oversampling=3.0,
                          max_counts=1e7, compute_phase=False)
    z0, y0, x0 = frames // 2 - 64, 180 - 64, 330 - 64
    stack[z0:z0 + 128, y0:y0 + 128, x0:x0 + 128] += sp.intensity
    stack[:, 256:260, :] = 0  # the Maxipix module gaps
    stack[:, :, 256:260] = 0
    for y, x in rng.integers(0, n, (40, 2)):
        stack[:, y, x] += rng.uniform(300, 3e4)
    for y, x in np.stack([rng.integers(150, 210, 30), rng.integers(300, 360, 30)], axis=1):  # in the peak
        stack[:, y, x] = 0
    return stack


def _reset_hwm() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _status(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return float(line.split()[1]) * 1024
    return float("nan")


def run(stack: np.ndarray, **kw) -> tuple[object, float, float, float]:
    from napari_bcdi_dl.core.prepare import prepare
    from napari_bcdi_dl.core.types import Geometry, LoadedData

    loaded = LoadedData(data=stack, geometry=Geometry(detector="mpx1x4", roi=(0, 516, 0, 516)), meta={})
    gc.collect()
    _reset_hwm()
    rss0 = _status("VmRSS")
    tracemalloc.start()
    t0 = time.perf_counter()
    out = prepare(loaded, **kw)
    dt = time.perf_counter() - t0
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    hwm = _status("VmHWM") - rss0
    return out, dt, peak / stack.nbytes, hwm / stack.nbytes


XU_CASES = [
    ("ID01", {"eta": 17.0, "phi": 0.0, "nu": 0.0, "delta": 34.0}, "eta", 0.01, None, None),
    ("ID01", {"eta": 12.0, "phi": 20.0, "nu": 10.0, "delta": 30.0}, "eta", 0.005, None, None),
    ("ID01", {"eta": 15.0, "phi": 0.0, "nu": 5.0, "delta": 30.0}, "phi", 0.01, None, None),
    ("ID01", {"eta": 17.0, "phi": 0.0, "nu": 0.0, "delta": 34.0}, "eta", 0.01, (200, 328, 150, 278), (300.0, 250.0)),
    ("34-ID-C", {"theta": 16.0, "chi": 90.0, "phi": 0.0, "delta": 32.0, "gamma": 0.0}, "theta", 0.004, None, None),
    ("34-ID-C", {"theta": 10.0, "chi": 85.0, "phi": 3.0, "delta": 20.0, "gamma": 25.0}, "theta", 0.004, None, None),
]


def xu_agreement() -> list[tuple]:
    """One row per configuration: (beamline, angles, rocking motor, |Q|, Gram relative difference, det ratio)."""
    import xrayutilities as xu

    from napari_bcdi_dl.core.geometry import detector_frame
    from napari_bcdi_dl.core.types import Geometry

    energy, dist, px, shape = 9.0, 1.2, 55e-6, (64, 128, 128)
    lam_a = 12.398419843320026 / energy
    rows = []
    for beamline, angles, motor, step, roi, bc in XU_CASES:
        g = Geometry(energy_kev=energy, distance_m=dist, pixel_size_m=(px, px), rocking_step_deg=step,
                     rocking_motor=motor, angles_deg=dict(angles), roi=roi, beam_center=bc)
        f = detector_frame(g, shape)
        if beamline == "ID01":  # circles of core.geometry in xrayutilities' frame (x down, y out, z up)
            qc = xu.experiment.QConversion(["y-", "z-"], ["z-", "y-"], [1, 0, 0])
            order, det_dirs = ("eta", "phi", "nu", "delta"), ("z-", "y+")
        else:
            qc = xu.experiment.QConversion(["z+", "x-", "z+"], ["z+", "y-"], [1, 0, 0])
            order, det_dirs = ("theta", "chi", "phi", "delta", "gamma"), ("z-", "y-")
        if roi is None:
            r_c = c_c = 0
            cch = (0.0, 0.0)
        else:
            r_c, c_c = roi[0] + shape[1] // 2, roi[2] + shape[2] // 2
            cch = bc
        qc.init_area(det_dirs[0], det_dirs[1], cch1=cch[0], cch2=cch[1], Nch1=516, Nch2=516, distance=dist,
                     pwidth1=px, pwidth2=px)

        def q(dm, dr, dc, angles=angles, motor=motor, step=step, r_c=r_c, c_c=c_c, order=order, qc=qc):
            a = dict(angles)
            a[motor] += dm * step
            if "chi" in a:
                a["chi"] -= 90.0  # 34-ID-C: chi reads 90 when its rotation is the identity
            qx, qy, qz = qc.area(*[a[k] for k in order], wl=lam_a, deg=True,
                                 roi=(r_c + dr, r_c + dr + 1, c_c + dc, c_c + dc + 1))
            v = 10 * np.array([qx.ravel()[0], qy.ravel()[0], qz.ravel()[0]])  # 1/Å -> 1/nm
            return np.array([v[0], v[2], v[1]])  # (downstream, up, outboard) = the project's (z, y, x)

        big_q = q(0, 0, 0)
        b = np.stack([(q(1, 0, 0) - q(-1, 0, 0)) / 2, (q(0, 1, 0) - q(0, -1, 0)) / 2,
                      (q(0, 0, 1) - q(0, 0, -1)) / 2], axis=1)
        m1, m2 = np.column_stack([f.q_bragg, f.q_basis]), np.column_stack([big_q, b])
        g1, g2 = m1.T @ m1, m2.T @ m2
        rows.append((beamline, angles, motor, float(np.linalg.norm(f.q_bragg)),
                     float(np.abs(g1 - g2).max() / np.abs(g1).max()),
                     float(np.linalg.det(f.q_basis) / np.linalg.det(b))))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--skip-aliens", action="store_true")
    ap.add_argument("--xu", action="store_true", help="compare the geometry with xrayutilities")
    args = ap.parse_args()
    if args.xu:
        print("| beamline | angles (deg) | rocking | |Q| (1/nm) | Gram matrix rel. diff. | det B ratio |")
        print("|---|---|---|---|---|---|")
        for bl, angles, motor, qn, diff, ratio in xu_agreement():
            a = ", ".join(f"{k} {v:g}" for k, v in angles.items())
            print(f"| {bl} | {a} | {motor} | {qn:.4f} | {diff:.1e} | {ratio:.9f} |")
        return
    # warm the imports (pyFAI, scikit-learn) outside the timed calls
    from napari_bcdi_dl.core.aliens import find_aliens  # noqa: F401
    from napari_bcdi_dl.core.masks import pyfai_detector

    pyfai_detector("Maxipix2x2")
    stack = make_stack(args.frames)
    print(f"input: {stack.shape} float32, {stack.nbytes / 1e6:.0f} MB")
    print("| run | time | output shape | extra peak memory (tracemalloc) | peak RSS growth | total with input |")
    print("|---|---|---|---|---|---|")
    runs = [("hot + dead pixels, gaps, auto crop", {"hot_pixels": True})]
    if not args.skip_aliens:
        runs.append(("same + bin 1 2 2 + aliens", {"hot_pixels": True, "bin_factors": (1, 2, 2), "aliens": "auto"}))
    for name, kw in runs:
        out, dt, extra, hwm = run(stack, **kw)
        steps = {r["step"]: r["result"] for r in out.meta["provenance"]}
        print(f"| {name} | {dt:.1f} s | {tuple(out.data.shape)} | {extra:.2f} × input | {hwm:.2f} × input | "
              f"{1 + max(extra, hwm):.2f} copies |", flush=True)
        print(f"  hot pixels {steps['hot_pixels']['n_pixels']}, dead {steps['dead_pixels']['n_dead']}, gaps "
              f"{steps['detector_gaps']['library']}, crop {steps['crop']['shape']} at {steps['crop']['peak']}"
              + (f", aliens {len(steps['aliens']['accepted'])}" if "aliens" in steps else ""))
        del out
        gc.collect()


if __name__ == "__main__":
    main()
