"""Batch throughput: N simulated scans through the whole pipeline on a 2-worker Dask LocalCluster, against a
serial loop over the same scans in this process; and the per-scan results must be identical.

Each scan goes through ``pipeline.folder.process_scan`` in both cases (read, mask, conventional phasing,
strain, export, thumbnail, done.json), so the two routes do the same work; the batch adds the cluster
(started inside the timed region: its start is part of what a user waits for; the steady-state time, from
the first submission, is printed too). Fixed seeds. Prints the throughput ratio, the per-scan costs
(median of each step, serial), and whether every array (object, support, strain arrays) is identical.

Usage::

    python benchmarks/bench_batch.py                      # 12 scans of 64³, 2 workers
    python benchmarks/bench_batch.py --n 4 --size 32      # a quick look
    python benchmarks/bench_batch.py --serial-only --size 128 --recipe "HIO**400, RAAR**1000, ER**300" \\
        --runs 5 --n 2 --backend cupy                     # per-scan cost of a realistic scan (e.g. on a GPU)

The numbers quoted in docs/batch.md come from this script; on a loaded machine (another job running)
the ratio moves from run to run, so run it a few times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STEPS = ("read_s", "mask_s", "phase_s", "strain_s", "export_s", "total_s")


def make_scans(folder: Path, n: int, size: int) -> list[Path]:
    """``n`` simulated patterns of ``size``³ (Poisson counts), seeds 0..n-1, as npz files."""
    from napari_bcdi_dl.core.simulate import simulate_pattern

    paths = []
    for i in range(n):
        s = simulate_pattern(size, seed=1000 + i, oversampling=3.5, max_counts=1e6, phase_range=2.0,
                             compute_phase=False)
        p = folder / f"scan_{i:02d}.npz"
        np.savez(p, data=s.intensity)
        paths.append(p)
    return paths


def serial(cfg, items, out: Path) -> tuple[float, list[dict]]:
    """The scans one after the other in this process."""
    from napari_bcdi_dl.pipeline.folder import process_scan

    out.mkdir()
    t0 = time.perf_counter()
    rows = [process_scan(cfg, item, out / item.name) for item in items]
    return time.perf_counter() - t0, rows


def batch(cfg, out: Path, workers: int) -> tuple[float, float, list[dict]]:
    """The scans on a LocalCluster: (wall time with the cluster start, from the first submission, rows)."""
    from napari_bcdi_dl.pipeline.batch import run_batch

    marks: dict = {}

    def on_event(kind: str, info: dict) -> None:
        if kind == "submitted":
            marks.setdefault("first", time.perf_counter())

    t0 = time.perf_counter()
    result = run_batch(cfg, out, workers=workers, on_event=on_event)
    t1 = time.perf_counter()
    return t1 - t0, t1 - marks.get("first", t0), result.rows


def identical(a: Path, b: Path) -> list[str]:
    """Names of the arrays that differ between two result folders."""
    bad = []
    for name, keys in (("reconstruction.npz", ("obj", "support")),
                       ("strain.npz", ("amplitude", "phase", "displacement", "het_strain", "support"))):
        with np.load(a / name) as fa, np.load(b / name) as fb:
            bad += [f"{name}:{k}" for k in keys if not np.array_equal(fa[k], fb[k], equal_nan=True)]
    return bad


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=12, help="scans (default 12)")
    p.add_argument("--size", type=int, default=64, help="pattern size (default 64)")
    p.add_argument("--workers", type=int, default=2, help="Dask workers (default 2)")
    p.add_argument("--recipe", default="HIO**150, ER**100", help="phasing recipe (default 'HIO**150, ER**100')")
    p.add_argument("--runs", type=int, default=2, help="phasing runs per scan (default 2)")
    p.add_argument("--backend", default="numpy", help="phasing backend (default numpy)")
    p.add_argument("--serial-only", action="store_true", help="per-scan costs only, no cluster")
    p.add_argument("--batch-only", action="store_true", help="the batch alone (no serial loop, no comparison)")
    p.add_argument("--json", help="write the numbers to this file too")
    args = p.parse_args(argv)

    from napari_bcdi_dl.pipeline.config import config_from_dict
    from napari_bcdi_dl.pipeline.scans import expand_scans

    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        root = Path(tmp)
        (root / "scans").mkdir()
        make_scans(root / "scans", args.n, args.size)
        cfg = config_from_dict({"scans": ["scans/*.npz"],
                                "phase": {"method": "conventional", "recipe": args.recipe, "runs": args.runs,
                                          "backend": args.backend}}, root, source="bench")
        items = expand_scans(cfg)
        if args.batch_only:
            t_all, t_steady, rows_b = batch(cfg, root / "batch", args.workers)
            done = [r for r in rows_b if r.get("status") == "done"]
            out = {"n": args.n, "size": args.size, "recipe": args.recipe, "runs": args.runs,
                   "backend": args.backend, "workers": args.workers, "batch_s": round(t_all, 2),
                   "batch_steady_s": round(t_steady, 2), "done": len(done),
                   "scans_per_hour_steady": round(3600 * len(done) / t_steady, 1)}
            print(f"{args.n} scans of {args.size}^3, recipe '{args.recipe}' x {args.runs} runs, backend "
                  f"{args.backend}: batch on {args.workers} workers {t_all:.1f} s ({t_steady:.1f} s from the first "
                  f"submission, {out['scans_per_hour_steady']} scans/h), {len(done)} done")
            if args.json:
                Path(args.json).write_text(json.dumps(out, indent=1))
            return 0
        t_serial, rows_s = serial(cfg, items, root / "serial")
        costs = {k: statistics.median(float(r.get(k) or 0.0) for r in rows_s) for k in STEPS}
        out = {"n": args.n, "size": args.size, "recipe": args.recipe, "runs": args.runs, "backend": args.backend,
               "serial_s": round(t_serial, 2), "per_scan_median_s": {k: round(v, 3) for k, v in costs.items()},
               "serial_scans_per_hour": round(3600 * args.n / t_serial, 1)}
        print(f"{args.n} scans of {args.size}^3, recipe '{args.recipe}' x {args.runs} runs, backend {args.backend}")
        print(f"serial loop in one process: {t_serial:.1f} s ({out['serial_scans_per_hour']} scans/h)")
        print("per-scan cost, median (s): " + ", ".join(f"{k[:-2]} {v:.3f}" for k, v in costs.items()))
        if not args.serial_only:
            t_all, t_steady, rows_b = batch(cfg, root / "batch", args.workers)
            bad = {i.name: identical(root / "serial" / i.name, root / "batch" / i.name) for i in items}
            bad = {k: v for k, v in bad.items() if v}
            failed = [r for r in rows_b if r.get("status") != "done"]
            out.update(batch_s=round(t_all, 2), batch_steady_s=round(t_steady, 2), workers=args.workers,
                       ratio=round(t_serial / t_all, 3), ratio_steady=round(t_serial / t_steady, 3),
                       identical=not bad, failed=len(failed))
            print(f"batch on {args.workers} workers: {t_all:.1f} s with the cluster start, {t_steady:.1f} s "
                  f"from the first submission")
            print(f"throughput ratio batch/serial: {out['ratio']:.2f} (steady state {out['ratio_steady']:.2f})")
            print(f"per-scan results identical to the serial loop: {'yes' if not bad else bad}; "
                  f"failed scans: {len(failed)}")
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
