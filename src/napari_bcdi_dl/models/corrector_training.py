"""Training sets and training of the phase corrector (:mod:`.phase_corrector`).

A corrector set is made from a phase set (``bcdi-dl dataset phase``) and a phase model: every sample gets
Poisson noise at a random photon level, the model's prediction, and the engine's estimate on the model grid
from that prediction (``HIO**n, ER**50``, ``n`` drawn in 50–200, or one fixed recipe for a held-out set made
from the set's own noisy counts). Shards ``shard_00000.npz`` … hold ``counts`` (float32), ``estimate`` and
``phase`` (float16, the target centred as in :mod:`.phase_training`) and ``phase_range``; a killed run goes
on from the shards already written. The phase set must be unseen by the phase model, or the estimates are
better than the ones users get.

``python -m napari_bcdi_dl.models.corrector_training make SRC OUT --n N --seed S [--val]`` and
``... train --data DIR --val DIR --out RUN --init PHASE_MODEL.keras --export FILE.keras``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.errors import BCDIError
from .phase_corrector import ESTIMATE_RECIPE, corrector_input, estimate_phase
from .phase_training import (PhaseSet, argv_of, apply_symmetry, held_out_metrics, network_input, noisy_input,
                             strain_bins, symmetry)
from .wca import pack_targets, wca_numpy

SHARD = 256


def make_corrector_set(src: Sequence[str | Path], out: str | Path, *, n: int, seed: int, start: int = 0, model=None,
                       size: int = 32, held_out: bool = False, hio: tuple[int, int] = (50, 200), er: int = 50,
                       counts_log10: tuple[float, float] = (3.5, 8.0), workers: int = 1, log=print) -> Path:
    """Write a corrector set of ``n`` samples of the phase set(s) ``src`` to ``out`` (see the module doc).

    ``held_out``: use the set's own noisy counts and the fixed :data:`.phase_corrector.ESTIMATE_RECIPE`.
    ``start``: the first sample of ``src`` used (a multiple of the shard size), so that several processes can
    share one set. ``workers`` > 1 runs the engine's estimates in that many processes (numpy only; the
    network predicts in this one)."""
    from .dl_phasing import load_phase_model

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if int(start) % SHARD:
        raise BCDIError(f"corrector set: start {start} must be a multiple of {SHARD}")
    data = PhaseSet(list(src), size, max_samples=int(start) + int(n), keep_intensity=held_out)
    if model is None:
        model, _ = load_phase_model()
    t0 = time.time()
    pool = None
    if int(workers) > 1:  # spawned: the workers import numpy and the engine, never TensorFlow
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(int(workers), mp_context=mp.get_context("spawn"))
    try:
        _fill(data, out, model, int(start), int(seed), held_out, hio, er, counts_log10, pool, log, t0)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    (out / "manifest.json").write_text(json.dumps({"kind": "corrector", "n": len(data) - int(start),
                                                   "start": int(start), "seed": int(seed),
                                                   "src": [str(p) for p in src], "held_out": held_out,
                                                   "hio": list(hio), "er": er}, indent=1))
    return out


def _estimate(job: tuple) -> np.ndarray:
    counts, phi0, recipe = job
    return estimate_phase(counts, phi0, recipe)


def _fill(data, out: Path, model, start: int, seed: int, held_out: bool, hio, er, counts_log10, pool, log,
          t0: float) -> None:
    from .phase import predict_phase

    for i0 in range(int(start), len(data), SHARD):
        s = i0 // SHARD
        path = out / f"shard_{s:05d}.npz"
        if path.exists():
            continue
        rng = np.random.default_rng([int(seed), s])
        idx = range(i0, min(i0 + SHARD, len(data)))
        counts = np.stack([data.intensity[i] if held_out else noisy_input(data.expected[i], rng, counts_log10)
                           for i in idx]).astype(np.float32)
        x = np.stack([network_input(c) for c in counts])
        phi0 = predict_phase(model, x, batch_size=8)
        recipes = [ESTIMATE_RECIPE if held_out else f"HIO**{int(rng.integers(hio[0], hio[1] + 1))}, ER**{er}"
                   for _ in counts]
        jobs = zip(counts, phi0, recipes)
        est = np.stack(list(pool.map(_estimate, jobs, chunksize=4) if pool else map(_estimate, jobs)))
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, counts=counts, estimate=est.astype(np.float16), phase=data.phase[list(idx)],
                 phase_range=data.phase_range[list(idx)], predicted=phi0.astype(np.float16))
        tmp.replace(path)
        log(f"{path.name}: {len(idx)} samples, {time.time() - t0:.0f} s")


class CorrectorSet:
    """A corrector set in memory: ``x`` (log-normalised counts), ``estimate``, ``phase``, ``predicted``
    (float32/float16, (n, S, S, S)) and ``phase_range``."""

    def __init__(self, dirs: Sequence[str | Path], max_samples: int | None = None) -> None:
        parts = {k: [] for k in ("x", "estimate", "phase", "predicted", "phase_range")}
        for d in dirs:
            for p in sorted(Path(d).glob("shard_*.npz")):
                if p.name.endswith(".tmp.npz"):
                    continue
                with np.load(p) as z:
                    parts["x"].append(np.stack([network_input(c) for c in z["counts"]]))
                    for k in ("estimate", "phase", "predicted", "phase_range"):
                        parts[k].append(z[k])
        if not parts["x"]:
            raise BCDIError(f"no corrector shards in {', '.join(map(str, dirs))}: make them with "
                            "'python -m napari_bcdi_dl.models.corrector_training make' first")
        for k, v in parts.items():
            setattr(self, k, np.concatenate(v)[:max_samples])

    def __len__(self) -> int:
        return len(self.x)


def corrector_batches(data: CorrectorSet, batch: int, rng: np.random.Generator):
    """Endless ``(x, y)`` batches: x (b, S, S, S, 4), y the packed WCA targets; a random cube symmetry of
    each sample is applied to its intensity, estimate and target alike."""
    while True:
        xs, ys, ws = [], [], []
        for i in rng.integers(0, len(data), size=batch):
            perm, flips = symmetry(rng)
            x, e, p = (apply_symmetry(np.asarray(a[i], np.float32), perm, flips)
                       for a in (data.x, data.estimate, data.phase))
            xs.append(corrector_input(x, e))
            ys.append(p)
            ws.append(x)
        yield np.stack(xs), pack_targets(np.stack(ys), np.stack(ws))


def held_out_batches(data: CorrectorSet, batch: int) -> list:
    return [(corrector_input(data.x[i:i + batch], data.estimate[i:i + batch].astype(np.float32)),
             pack_targets(data.phase[i:i + batch].astype(np.float32), data.x[i:i + batch]))
            for i in range(0, len(data), batch)]


def baselines(data: CorrectorSet) -> dict:
    """Held-out WCA of the network's prediction and of the engine's estimate (what the corrector must beat)."""
    out = {}
    for name, arr in (("predicted", data.predicted), ("estimate", data.estimate)):
        v = np.array([wca_numpy(data.phase[i].astype(np.float32), arr[i].astype(np.float32), data.x[i])
                      for i in range(len(data))])
        out[f"{name}_wca"] = float(v.mean())
        for b, sel in strain_bins(data.phase_range).items():
            if sel.any():
                out[f"{name}_wca_{b}"] = float(v[sel].mean())
    return out


def train_corrector(args: argparse.Namespace) -> int:
    from ._keras import keras
    from .phase_corrector import corrector_from_phase_model, is_corrector
    from .phase_training import export_model
    from .training import cosine_schedule, fit, time_cosine_schedule
    from .wca import wca_loss

    train = CorrectorSet(args.data)
    val = CorrectorSet(args.val)
    base = baselines(val)
    print(f"corrector training: {len(train)} samples, {len(val)} held-out; held-out baselines "
          + ", ".join(f"{k} {v:.4f}" for k, v in base.items()), flush=True)
    keras().utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    card_path = Path(args.init).with_suffix(".json")
    if not card_path.is_file():
        raise BCDIError(f"--init {args.init}: no card {card_path.name} beside it (its 'arch' builds the corrector)")
    arch = {k: v for k, v in json.loads(card_path.read_text())["arch"].items() if k != "corrector"}
    init = keras().saving.load_model(str(args.init), compile=False)
    # a phase model becomes a corrector; a corrector (the shipped one) continues as it is
    model = init if is_corrector(init) else corrector_from_phase_model(init, arch)
    command = "python -m napari_bcdi_dl.models.corrector_training train " + " ".join(
        argv_of(args, skip=("what",)))

    def on_epoch(record: dict, m) -> None:
        if args.export and record.get("best"):
            export_model(m, args.export, {
                "name": Path(args.export).stem, "kind": "phase_corrector", "grid": int(val.x.shape[1]),
                "arch": {**arch, "corrector": True},
                "input": "log_normalise(I), cos, sin and value of the phase estimate after "
                         f"{ESTIMATE_RECIPE} on the model grid (phase_corrector.estimate_phase)",
                "output": "reciprocal-space phase: the estimate plus a learnt correction (radians, unbounded)",
                "init": str(args.init),
                "step": record["step"], "held_out": {k: v for k, v in record.items() if k.startswith("val_")},
                "held_out_baselines": base, "n_train": len(train), "n_val": len(val), "command": command,
                "elapsed_s": record.get("elapsed_s"), "trained": time.strftime("%Y-%m-%d %H:%M:%S")})

    batches = corrector_batches(train, args.batch, rng)
    budget = getattr(args, "time_budget", None)
    if budget is not None:  # a GPU run: the cosine follows the training time, --steps still caps it
        schedule = time_cosine_schedule(args.lr, budget, warmup=args.warmup)
    else:
        schedule = cosine_schedule(args.lr, args.steps, warmup=args.warmup)
    res = fit(model, wca_loss, batches, held_out_batches(val, args.batch), args.out, args.steps,
              steps_per_epoch=args.steps_per_epoch, learning_rate=schedule, max_seconds=budget,
              patience=None, checkpoint_every=50, resume=args.resume, rng=rng,
              metrics_fn=lambda m, vb: held_out_metrics(m, vb, val.phase_range), on_epoch=on_epoch,
              config={"command": command, "baselines": base})
    print(f"{args.out}: {res.stopped} at step {res.step}; best held-out WCA {res.best_val:.4f} at step "
          f"{res.best_step}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m napari_bcdi_dl.models.corrector_training")
    sub = p.add_subparsers(dest="what", required=True)
    m = sub.add_parser("make", help="make a corrector set from a phase set")
    m.add_argument("src", nargs="+")
    m.add_argument("out")
    m.add_argument("--n", type=int, required=True)
    m.add_argument("--seed", type=int, required=True)
    m.add_argument("--start", type=int, default=0, help="first sample of SRC used (a multiple of 256)")
    m.add_argument("--val", action="store_true", help="held-out: the set's own counts, the fixed recipe")
    m.add_argument("--model", default=None, help="phase model .keras (default: the shipped one)")
    m.add_argument("--workers", type=int, default=1, help="processes running the engine's estimates")
    t = sub.add_parser("train", help="train a corrector from a phase model")
    t.add_argument("--data", nargs="+", required=True)
    t.add_argument("--val", nargs="+", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--init", required=True,
                   help="the phase model (.keras, its card beside it) the corrector starts from, or a corrector "
                        "to continue")
    t.add_argument("--export", default=None)
    t.add_argument("--steps", type=int, default=4000)
    t.add_argument("--steps-per-epoch", type=int, default=250)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--warmup", type=int, default=100)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="train for this many seconds (the cosine decay follows the time; --steps still caps it)")
    a = p.parse_args(argv)
    if a.what == "make":
        model = None
        if a.model:
            from ._keras import keras

            model = keras().saving.load_model(a.model, compile=False)
        make_corrector_set(a.src, a.out, n=a.n, seed=a.seed, start=a.start, model=model,
                           held_out=a.val, workers=a.workers)
        return 0
    return train_corrector(a)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
