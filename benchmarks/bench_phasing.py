"""Benchmarks of the phasing engine (issue 4, item 8). Fixed seeds; ratios against baselines in the same run.

(a) ER and HIO iteration time on a 128³ complex64 array divided by the time of two FFTs (fftn + ifftn,
    scipy.fft, complex64, in place, workers=-1) of that array, measured interleaved in the same process —
    target ≤ 1.2 (the FFTs are the physical floor of an iteration).
(a') the element-wise steps alone (modulus projection, ER support product, HIO update) on the compiled
    loops against the blocked numpy fallback, same arrays, same process (ratio blocked / compiled).
(b) the same iterations against cohere-core's numpy backend on the same data — target ≥ 3× faster.
    cohere-core must live in ANOTHER environment (it is not a project dependency)::

        python -m venv /tmp/bench-venv && /tmp/bench-venv/bin/pip install cohere-core
        python benchmarks/bench_phasing.py --cohere-python /tmp/bench-venv/bin/python

    (or set COHERE_PYTHON). Without it, (b) is skipped.
(c) peak memory of ``phase()`` at 256³, in units of one complex64 array of that shape (target < 6),
    measured in a fresh subprocess both with tracemalloc (numpy's allocations) and as the growth of the
    process's peak resident memory (VmHWM, reset just before the call, − VmRSS before the call: everything,
    FFT scratch included).

Timings on a shared machine are noisy: the tasks are interleaved (FFT pair, ER, HIO, RAAR, FFT pair...) and
three ratios are printed: min/min, median/median, and the median over repetitions of the ratio of each
iteration to the FFT pair timed next to it (the most robust to a changing load).

Usage: ``python benchmarks/bench_phasing.py [--size 128] [--reps 15] [--mem-size 256] [--skip-mem]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import scipy.fft as sfft

SEED = 20240601


def make_data(n: int, seed: int = SEED) -> np.ndarray:
    """A centred, Poisson-noisy pattern of a faceted particle with a smooth phase (oversampling ~3)."""
    rng = np.random.default_rng(seed)
    c = np.arange(n) - n // 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij", sparse=True)
    r = n / 6
    shape = (
        (np.abs(x) <= r)
        & (np.abs(y) <= 0.8 * r)
        & (np.abs(z) <= 0.9 * r)
        & (np.abs(x) + np.abs(y) + np.abs(z) <= 1.3 * r)
    )
    obj = shape * np.exp(1j * 0.8 * np.exp(-(x**2 + y**2 + z**2) / (2 * (r / 1.5) ** 2)))
    i = np.abs(np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj)))) ** 2
    i *= 1e6 / i.max()
    return rng.poisson(i).astype(np.float32)


def bench_iterations(n: int, reps: int) -> dict:
    """(a): per-iteration times of ER / HIO / RAAR and of two FFTs, interleaved."""
    from napari_bcdi_dl.core.phasing.operators import Engine, prepare_data
    from napari_bcdi_dl.core.phasing.support import autocorrelation_support_native

    data = prepare_data(make_data(n), seed=0, backend="numpy")
    sup = autocorrelation_support_native(data.be, data.intensity_native(), 0.1)
    rng = np.random.default_rng(SEED)
    obj = (rng.standard_normal(data.shape) + 1j * rng.standard_normal(data.shape)).astype(np.complex64)
    # one engine per algorithm: an engine caches the coefficient arrays of its current algorithm
    engines = {k: Engine(data, obj * sup, sup) for k in ("ER", "HIO", "RAAR")}
    x = [obj.copy()]

    def two_ffts() -> None:
        x[0] = sfft.fftn(x[0], overwrite_x=True, workers=-1)
        x[0] = sfft.ifftn(x[0], overwrite_x=True, workers=-1)

    tasks = {
        "2 FFTs": two_ffts,
        "ER": lambda: engines["ER"].iterate("ER"),
        "HIO": lambda: engines["HIO"].iterate("HIO", 0.9),
        "RAAR": lambda: engines["RAAR"].iterate("RAAR", 0.9),
    }
    for f in tasks.values():  # warm up (plans, buffers)
        f()
        f()
    times: dict = {k: [] for k in tasks}
    for _ in range(reps):
        for k, f in tasks.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    base = np.asarray(times["2 FFTs"])
    return {
        k: (min(v), float(np.median(v)), float(np.median(np.asarray(v) / base))) for k, v in times.items()
    }


def bench_steps(n: int, reps: int) -> dict | None:
    """(a'): the element-wise steps alone, compiled loops vs blocked numpy; None without the compiled loops."""
    from napari_bcdi_dl.core.phasing import _fused
    from napari_bcdi_dl.core.phasing.operators import MODULUS_FLOOR, Engine, prepare_data
    from napari_bcdi_dl.core.phasing.support import autocorrelation_support_native

    if _fused._kernels is None:
        return None
    data = prepare_data(make_data(n), seed=0, backend="numpy")
    sup = autocorrelation_support_native(data.be, data.intensity_native(), 0.1)
    rng = np.random.default_rng(SEED)
    obj = (rng.standard_normal(data.shape) + 1j * rng.standard_normal(data.shape)).astype(np.complex64)
    out: dict = {}
    for compiled in (True, False):
        e = Engine(data, (obj * sup).astype(np.complex64), sup)
        e._plan = plan = _fused.BlockPlan(obj.size, np.asarray(data.fixed_idx), compiled=compiled)
        psi, prev = obj.copy(), obj.copy()
        e._coefficients("ER", 0.9)
        er = e._c_fused[0]
        e._coefficients("HIO", 0.9)
        f_pm, f_prev = e._c_fused
        steps = {
            "modulus projection": lambda p=plan, x=psi: _fused.modulus_step(p, x, data.amp, MODULUS_FLOOR),
            "ER support product": lambda p=plan, x=psi, c=er: _fused.scale_step(p, x, c),
            "HIO update": lambda p=plan, x=psi, c=f_pm, q=prev, n=f_prev: _fused.combine_step(p, x, c, q, n),
        }
        for name, f in steps.items():
            f()
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                f()
                ts.append(time.perf_counter() - t0)
            out.setdefault(name, {})["compiled" if compiled else "blocked"] = float(np.median(ts))
    return out


COHERE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import cohere_core.controller.phasing as ph
    path, algo, nit, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    best = []
    for r in range(reps):
        rec = ph.create_rec({"algorithm_sequence": f"{nit}*{algo}", "hio_beta": 0.9}, path, "np", -1, debug=True)
        t0 = time.perf_counter()
        rec.iterate()
        best.append((time.perf_counter() - t0) / nit)
    print("RESULT", json.dumps({"min": min(best), "median": float(np.median(best)),
                                "dtype": str(rec.ds_image.dtype)}))
    """
)


def bench_cohere(python: str, n: int, nit: int = 10, reps: int = 3) -> dict:
    """(b): cohere-core numpy per-iteration times (ER, HIO) on the same data, in its own interpreter."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npy")
        np.save(path, np.sqrt(make_data(n)))  # cohere's data are amplitudes
        script = os.path.join(tmp, "cohere_bench.py")
        with open(script, "w") as f:
            f.write(COHERE_SCRIPT)
        for algo in ("ER", "HIO"):
            res = subprocess.run(
                [python, script, path, algo, str(nit), str(reps)], capture_output=True, text=True, check=False
            )
            line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
            if res.returncode != 0 or not line:
                raise RuntimeError(f"cohere-core benchmark failed: {res.stderr.strip()[-500:]}")
            out[algo] = json.loads(line[0][7:])
    return out


MEM_SCRIPT = textwrap.dedent(
    """
    import json, sys, tracemalloc
    import numpy as np
    sys.path.insert(0, sys.argv[3])
    from bench_phasing import make_data
    from napari_bcdi_dl.core.phasing import phase
    n = int(sys.argv[1]); recipe = sys.argv[2]
    data = make_data(n)
    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    rss0 = status("VmRSS:")
    try:  # reset the peak (VmHWM) to the current RSS: make_data's own peak must not count
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    tracemalloc.start()
    res = phase(data, recipe=recipe, runs=1, seed=0, llk_every=2, backend="numpy")
    cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    hwm = status("VmHWM:")
    print("RESULT", json.dumps({"tracemalloc_peak": peak, "rss_growth": hwm - rss0, "bytes_per_copy": n**3 * 8,
                                "llk": res.best.llk}))
    """
)


def bench_memory(n: int) -> dict:
    """(c): peak memory of phase() at n³ in a fresh subprocess."""
    here = os.path.dirname(os.path.abspath(__file__))
    recipe = "sup=2, HIO**4, RAAR**4, ER**4"
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "mem_bench.py")
        with open(script, "w") as f:
            f.write(MEM_SCRIPT)
        res = subprocess.run(
            [sys.executable, script, str(n), recipe, here], capture_output=True, text=True, check=False
        )
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode != 0 or not line:
        raise RuntimeError(f"memory benchmark failed: {res.stderr.strip()[-800:]}")
    out = json.loads(line[0][7:])
    out["recipe"] = recipe
    return out


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--mem-size", type=int, default=256)
    ap.add_argument("--skip-mem", action="store_true")
    ap.add_argument("--cohere-python", default=os.environ.get("COHERE_PYTHON"))
    args = ap.parse_args(argv)
    n = args.size
    print(
        f"# bench_phasing  size={n}^3  reps={args.reps}  cpu_count={os.cpu_count()}  "
        f"load={os.getloadavg()[0]:.1f}  numpy {np.__version__}"
    )

    t = bench_iterations(n, args.reps)
    base_min, base_med, _ = t["2 FFTs"]
    print(f"\n(a) iteration time / time of two FFTs (fftn+ifftn, complex64, scipy.fft workers=-1), {n}^3")
    print(
        f"{'':8s} {'min ms':>8s} {'median ms':>10s} {'min/min':>8s} {'med/med':>8s} {'median of paired ratios':>24s}"
    )
    for k, (mn, md, pr) in t.items():
        print(f"{k:8s} {mn * 1e3:8.1f} {md * 1e3:10.1f} {mn / base_min:8.2f} {md / base_med:8.2f} {pr:24.2f}")
    print("target: ER and HIO ratio <= 1.2")

    st = bench_steps(n, args.reps)
    if st is None:
        print("\n(a') skipped: the compiled loops are not built in this environment")
    else:
        print(f"\n(a') element-wise steps alone, {n}^3, median ms (compiled loops vs blocked numpy, same arrays)")
        print(f"{'':20s} {'compiled':>9s} {'blocked':>9s} {'blocked/compiled':>17s}")
        for k, v in st.items():
            print(f"{k:20s} {v['compiled'] * 1e3:9.2f} {v['blocked'] * 1e3:9.2f} {v['blocked'] / v['compiled']:17.2f}")

    if args.cohere_python:
        c = bench_cohere(args.cohere_python, n)
        print(
            f"\n(b) against cohere-core numpy backend ({c['ER']['dtype']}), same data, {n}^3, min over 3 x 10 its"
        )
        print(f"{'':6s} {'cohere ms':>10s} {'ours ms':>9s} {'speed-up':>9s}")
        for k in ("ER", "HIO"):
            ours = t[k][0]
            print(f"{k:6s} {c[k]['min'] * 1e3:10.1f} {ours * 1e3:9.1f} {c[k]['min'] / ours:8.1f}x")
        print("target: >= 3x")
    else:
        print(
            "\n(b) skipped: pass --cohere-python PATH (an interpreter with cohere-core) or set COHERE_PYTHON"
        )

    if not args.skip_mem:
        m = bench_memory(args.mem_size)
        bpc = m["bytes_per_copy"]
        print(
            f"\n(c) peak memory of phase() at {args.mem_size}^3 ({m['recipe']}), "
            f"in complex64 array copies ({bpc / 2**20:.0f} MiB each)"
        )
        print(f"tracemalloc peak (numpy arrays) : {m['tracemalloc_peak'] / bpc:5.2f} copies")
        print(f"peak RSS growth (everything)    : {m['rss_growth'] / bpc:5.2f} copies")
        print("target: < 6 copies")
    return 0


if __name__ == "__main__":
    sys.exit(main())
