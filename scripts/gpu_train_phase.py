#!/usr/bin/env python3
"""One GPU training run of the 64³ phase network: simulate, train on a wall-clock budget, export.

Run it through ``scripts/gpu_train_phase.sh`` (which installs the carried wheels, sets the backend and runs
the CuPy check beside it); see ``docs/gpu-training.md``. Stages, each timed into ``OUT/summary.json``:

1. device: the Keras backend and what it sees (without a GPU the run stops here unless ``--dry-run`` or
   ``--no-require-gpu``);
2. simulation, in a background thread: ``core.simulate.generate_dataset("phase", ...)`` of the training
   set and of a held-out set with its own seed, on all cores;
3. meanwhile, on the main thread, a preflight: the model is built, one training step and one prediction
   are compiled (JAX keeps them in its persistent cache, so the training below does not compile them again)
   and a float32 export is written, loaded back and run: a broken setup fails in the first minute;
4. training: ``bcdi-dl train phase`` (:mod:`napari_bcdi_dl.models.phase_training`) with the time left
   before ``--deadline``, mixed precision, batches made on threads; the float32 export and its card are
   written into OUT at every better held-out score, so a run killed at its limit still leaves weights;
5. the card gets the run's facts (device, data seeds, timings), and a reference pair (held-out inputs and
   the export's predictions on this backend, full float32) is saved for ``scripts/gpu_check_export.py``,
   which loads the export under TensorFlow and compares.

Files in OUT, flat (the device tool brings back at most 8): ``NAME.keras`` (or ``NAME.keras.part0``,
``.part1`` when over 15.5 MiB: ``cat`` them back), ``NAME.json``, ``log.json``, ``reference.npz``,
``summary.json``; the shell script adds ``train.log`` and ``cupy_test.log``. Checkpoints (with the optimizer
state) stay in the work folder on the machine.

``--dry-run`` is the same path at toy size on the CPU (a few 32³ samples cropped to a 16³ model, seconds
of training; XLA's quick CPU compilation; TensorFlow kept out as on the GPU machine):
``tests/models/test_gpu_script.py`` runs it with ``KERAS_BACKEND=jax``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

#: The GPU run's defaults: 64³, widths whose float32 export stays under 16 MiB (3.9 M parameters).
WIDTHS_64 = (16, 32, 48, 96, 160)
SPLIT_MIB = 15.5
#: Toy settings of --dry-run (options given on the command line still win).
DRY = {"size": 32, "grid": 16, "n_train": 16, "n_val": 4, "widths": [4, 4, 4], "batch": 2, "train_seconds": 5.0,
       "deadline": 240.0, "steps_per_epoch": 3, "val_limit": 4, "sim_workers": 1, "data_threads": 2,
       "load_threads": 2, "warmup": 2, "curriculum_steps": 0, "reference_n": 2, "reserve": 5.0,
       "precision": "float32", "name": "phase_dryrun"}
#: XLA flags of --dry-run: CPU compilation ~10x quicker (each weight initialiser is a compilation; the
#: steps run ~2x slower, which a toy run does not feel).
DRY_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
T0 = float(os.environ.get("BCDI_GPU_T0") or time.time())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--out", default=os.environ.get("OUT") or "runs/gpu_phase", help="output folder (what comes back)")
    a("--work", default=None,
      help="datasets and checkpoints (default: a new folder in /dev/shm when it has room, else in /tmp, "
           "removed at the end unless --keep-work)")
    a("--keep-work", action="store_true", help="keep the automatic work folder")
    a("--name", default="phase_unet64", help="name of the exported model (file stem)")
    a("--size", type=int, default=64, help="simulated pattern size (32, 64 or 128)")
    a("--grid", type=int, default=None, help="model grid (default: --size; smaller crops the patterns)")
    a("--n-train", type=int, default=4000, help="simulated training samples")
    a("--n-val", type=int, default=128, help="simulated held-out samples")
    a("--train-seed", type=int, default=6401, help="seed of the training set")
    a("--val-seed", type=int, default=6501, help="seed of the held-out set")
    a("--sim-workers", type=int, default=None, help="simulation processes (default: all cores)")
    a("--train-seconds", type=float, default=420.0, help="training budget (seconds of training steps)")
    a("--deadline", type=float, default=510.0,
      help="the whole run (install included, from BCDI_GPU_T0) ends within this many seconds")
    a("--reserve", type=float, default=30.0, help="seconds kept after training for validation and export")
    a("--widths", type=int, nargs="+", default=list(WIDTHS_64), help="channels per level, bottleneck last")
    a("--batch", type=int, default=32)
    a("--lr", type=float, default=2e-3, help="peak learning rate (cosine decay over the time budget)")
    a("--warmup", type=int, default=300, help="learning-rate warm-up steps")
    a("--curriculum-steps", type=int, default=800, help="steps of the low-strain-first curriculum")
    a("--steps-per-epoch", type=int, default=300, help="steps between held-out evaluations and exports")
    a("--val-limit", type=int, default=128, help="held-out samples evaluated at each epoch")
    a("--precision", default=None, choices=("float32", "mixed_bfloat16"),
      help="compute precision (default: mixed_bfloat16 on a GPU, float32 on the CPU)")
    a("--data-threads", type=int, default=None, help="threads making the batches (default: cores - 2)")
    a("--load-threads", type=int, default=None, help="threads centring the phases (default: all cores)")
    a("--seed", type=int, default=0, help="training seed (initial weights, batches)")
    a("--init", default=None, metavar="MODEL.keras", help="start from these weights (same widths)")
    a("--norm", choices=("batch", "group", "none"), default="batch",
      help="normalisation after each convolution (group: independent of the batch; see docs/models.md)")
    a("--reference-n", type=int, default=2, help="held-out samples in reference.npz")
    a("--require-gpu", action=argparse.BooleanOptionalAction, default=None,
      help="stop unless the backend sees a GPU (default: on, off with --dry-run)")
    a("--dry-run", action="store_true", help="toy sizes on the CPU: the test of this script")
    args = p.parse_args(argv)
    if args.dry_run:  # toy defaults where the command line did not choose
        given = {tok.split("=")[0][2:].replace("-", "_") for tok in (argv if argv is not None else sys.argv[1:])
                 if tok.startswith("--")}
        for k, v in DRY.items():
            if k not in given:
                setattr(args, k, v)
    if args.require_gpu is None:
        args.require_gpu = not args.dry_run
    args.grid = args.grid or args.size
    args.argv = list(argv if argv is not None else sys.argv[1:])
    return args


# ------------------------------------------------------------------------------------------------ helpers
def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def since_t0() -> float:
    return round(time.time() - T0, 1)


def log(msg: str) -> None:
    print(f"[gpu_train_phase {since_t0():7.1f} s] {msg}", flush=True)


def write_json(path: Path, obj) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True, default=str)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def work_folder(args: argparse.Namespace) -> Path:
    """/dev/shm when it holds the simulated sets with room to spare (5.5 MB per 64³ sample), else /tmp."""
    if args.work:
        return Path(args.work)
    need = 1.5 * (args.n_train + args.n_val) * 21 * args.size**3
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > need:
        return Path(tempfile.mkdtemp(prefix="bcdi-gpu-", dir=shm))
    return Path(tempfile.mkdtemp(prefix="bcdi-gpu-"))


def device_info(backend: str) -> dict:
    """What the Keras backend sees: platform (gpu/cpu), device names, versions."""
    info: dict = {"backend": backend, "python": sys.version.split()[0], "cores": cores()}
    import keras
    import numpy

    info.update(keras=keras.__version__, numpy=numpy.__version__)
    if backend == "jax":
        import jax

        devs = jax.devices()
        info.update(jax=jax.__version__, platform=devs[0].platform,
                    devices=[getattr(d, "device_kind", str(d)) for d in devs])
    elif backend == "torch":
        import torch

        gpu = torch.cuda.is_available()
        info.update(torch=torch.__version__, platform="gpu" if gpu else "cpu",
                    devices=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] or ["cpu"])
    else:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        info.update(tensorflow=tf.__version__, platform="gpu" if gpus else "cpu",
                    devices=[g.name for g in gpus] or ["cpu"])
    if info["platform"] not in ("gpu", "cpu"):  # jax says "cuda" or "rocm" on some versions
        info["platform"] = "gpu"
    return info


def full_float32(backend: str) -> None:
    """No TF32 in float32 convolutions from here on (the reference must match a CPU's float32)."""
    if backend == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
    elif backend == "torch":
        import torch

        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


# ------------------------------------------------------------------------------------------------ stages
class Simulation(threading.Thread):
    """The training and held-out sets, made in the background (processes of ``generate_dataset``)."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        super().__init__(name="simulation", daemon=True)
        self.args, self.work = args, work
        self.timings: dict = {}
        self.error: BaseException | None = None
        self.trace = ""

    def run(self) -> None:
        from napari_bcdi_dl.core.simulate import generate_dataset

        a = self.args
        try:
            for which, n, seed in (("train", a.n_train, a.train_seed), ("val", a.n_val, a.val_seed)):
                t = time.time()
                generate_dataset("phase", self.work / which, n, size=a.size, seed=seed, workers=a.sim_workers)
                self.timings[f"{which}_s"] = round(time.time() - t, 1)
                log(f"simulated {n} {which} samples of {a.size}³ (seed {seed}) in {self.timings[which + '_s']} s")
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            self.error, self.trace = err, traceback.format_exc()


def arch_of(args: argparse.Namespace) -> dict:
    from napari_bcdi_dl.models.phase_training import DEFAULT_ARCH

    return {"size": args.grid, "base": int(args.widths[0]), "depth": len(args.widths) - 1, "stem": "none",
            "widths": [int(w) for w in args.widths], "dilations": DEFAULT_ARCH["dilations"],
            "n_dilated": DEFAULT_ARCH["n_dilated"], **({} if args.norm == "batch" else
                                                        {"norm": None if args.norm == "none" else args.norm})}


def preflight(args: argparse.Namespace, work: Path) -> dict:
    """Build, compile a training step and a prediction exactly as the run will, export, reload, predict."""
    import numpy as np

    from napari_bcdi_dl.models._keras import keras
    from napari_bcdi_dl.models.phase_training import build_model, export_model
    from napari_bcdi_dl.models.wca import wca_loss

    k = keras()
    out: dict = {}
    model = build_model(arch_of(args), args.precision)
    out["params"] = int(model.count_params())
    out["float32_mib"] = round(out["params"] * 4 / 2**20, 2)
    model.compile(optimizer=k.optimizers.Adam(learning_rate=1e-4), loss=wca_loss, jit_compile="auto")
    s = args.grid
    x = np.zeros((args.batch, s, s, s, 1), np.float32)
    y = np.zeros((args.batch, s, s, s, 2), np.float32)
    t = time.time()
    loss = float(np.asarray(model.train_on_batch(x, y)))
    out["train_compile_s"] = round(time.time() - t, 2)
    t = time.time()
    for _ in range(2):
        model.train_on_batch(x, y)
    out["step_s"] = round((time.time() - t) / 2, 4)
    t = time.time()
    model.predict_on_batch(x)
    out["predict_compile_s"] = round(time.time() - t, 2)
    if not np.isfinite(loss):
        raise RuntimeError(f"preflight: the training step gave a loss of {loss}")
    path = export_model(model, work / "preflight.keras", {"preflight": True})
    out["export_mib"] = round(path.stat().st_size / 2**20, 2)
    back = k.saving.load_model(str(path), compile=False)
    policies = sorted({layer.dtype_policy.name for layer in back.layers})
    if policies != ["float32"]:
        raise RuntimeError(f"preflight: the export carries dtype policies {policies}, not float32 only")
    pred = np.asarray(back.predict_on_batch(x[:1] + 0.5))
    if not np.all(np.isfinite(pred)):
        raise RuntimeError("preflight: the reloaded export predicts non-finite values")
    del model, back
    return out


def train(args: argparse.Namespace, work: Path, out: Path, card_extra: dict):
    """``bcdi-dl train phase`` with the GPU settings; returns (FitResult, the command)."""
    from napari_bcdi_dl.models.phase_training import add_phase_arguments, run_training

    stop_by = T0 + args.deadline - args.reserve
    argv = ["--data", str(work / "train"), "--val", str(work / "val"), "--out", str(work / "run"),
            "--export", str(out / f"{args.name}.keras"), "--size", str(args.grid),
            "--widths", *map(str, args.widths), "--stem", "none", "--batch", str(args.batch), "--lr", str(args.lr),
            "--warmup", str(args.warmup), "--curriculum-steps", str(args.curriculum_steps),
            "--steps-per-epoch", str(args.steps_per_epoch), "--val-limit", str(args.val_limit),
            "--precision", args.precision, "--time-budget", str(args.train_seconds),
            "--stop-by", f"{stop_by:.1f}", "--data-threads", str(args.data_threads),
            "--load-threads", str(args.load_threads), "--checkpoint-every", "500", "--patience", "0",
            "--seed", str(args.seed), "--norm", args.norm] + (["--init", args.init] if args.init else [])
    targs = add_phase_arguments(argparse.ArgumentParser(prog="bcdi-dl train phase")).parse_args(argv)
    targs.card_extra = card_extra
    return run_training(targs)


def reference_pair(args: argparse.Namespace, work: Path, export: Path, backend: str) -> dict:
    """Held-out inputs and the export's float32 predictions on this backend, into OUT/reference.npz."""
    import numpy as np

    from napari_bcdi_dl.core.reciprocal import log_normalise
    from napari_bcdi_dl.models._keras import keras
    from napari_bcdi_dl.models.phase_training import PhaseSet
    from napari_bcdi_dl.models.wca import wca_numpy

    full_float32(backend)
    val = PhaseSet([work / "val"], args.grid, max_samples=args.reference_n, keep_intensity=True)
    x = np.stack([log_normalise(a) for a in val.intensity]).astype(np.float32)
    model = keras().saving.load_model(str(export), compile=False)
    phase = np.asarray(model.predict_on_batch(x[..., None]), dtype=np.float32)[..., 0]  # one compiled call
    truth = val.phase.astype(np.float32)
    wca = [float(wca_numpy(truth[i], phase[i], x[i])) for i in range(len(x))]
    np.savez(Path(args.out) / "reference.npz", x=x, phase=phase, phase_true=truth, backend=backend,
             model=export.name)
    return {"n": len(x), "wca": wca, "finite": bool(np.all(np.isfinite(phase)))}


def split_if_large(path: Path) -> list[str]:
    """Cut a file over SPLIT_MIB into parts of 15 MiB (the trip back takes ≤ 16 MiB per file)."""
    if path.stat().st_size <= SPLIT_MIB * 2**20:
        return [path.name]
    parts, chunk = [], 15 * 2**20
    with path.open("rb") as f:
        for i, block in enumerate(iter(lambda: f.read(chunk), b"")):
            part = path.with_name(f"{path.name}.part{i}")
            part.write_bytes(block)
            parts.append(part.name)
    path.unlink()
    return parts


# ------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        os.environ.setdefault("XLA_FLAGS", DRY_XLA_FLAGS)
        if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
            # as on the GPU machine, no TensorFlow: Keras's serialisation would import it here (5-10 s)
            sys.modules.setdefault("tensorflow", None)  # type: ignore[arg-type]
    work = work_folder(args)
    try:
        return run(args, work)
    finally:
        if not args.work and not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = cores()
    args.sim_workers = args.sim_workers or n
    args.data_threads = args.data_threads or max(1, n - 2)
    args.load_threads = args.load_threads or n
    work.mkdir(parents=True, exist_ok=True)
    summary: dict = {"command": "scripts/gpu_train_phase.sh " + " ".join(map(shlex.quote, args.argv)),
                     "work": str(work), "stages": {}, "ok": False}
    summary_path = out / "summary.json"

    def stage(name: str, **facts) -> None:
        summary["stages"][name] = {"at_s": since_t0(), **facts}
        write_json(summary_path, summary)

    try:
        return stages(args, work, out, summary, stage)
    except BaseException as err:  # the reason goes into summary.json too, then out as usual
        summary["error"] = f"{type(err).__name__}: {err}"
        summary["traceback"] = traceback.format_exc()[-4000:]
        stage("failed")
        raise


def stages(args: argparse.Namespace, work: Path, out: Path, summary: dict, stage) -> int:
    from napari_bcdi_dl.models._keras import backend_name

    n = cores()

    backend = backend_name()
    dev = device_info(backend)
    log(f"backend {backend}: {dev.get('platform')} {dev.get('devices')}; {n} cores; work in {work}; "
        f"keras {dev['keras']}, {backend} {dev.get(backend)}")
    summary["device"] = dev
    stage("device")
    if args.require_gpu and dev["platform"] != "gpu":
        log("no GPU seen by the backend: stopping (--no-require-gpu to run anyway)")
        return 4
    args.precision = args.precision or ("mixed_bfloat16" if dev["platform"] == "gpu" else "float32")
    summary["settings"] = {k: v for k, v in vars(args).items()}
    sim = Simulation(args, work)
    sim.start()
    pre = preflight(args, work)
    log(f"preflight: {pre}")
    stage("preflight", **pre)
    if pre["export_mib"] > SPLIT_MIB:
        log(f"the export is {pre['export_mib']} MiB: it will come back in parts (cat them back)")
    sim.join()
    if sim.error is not None:
        print(sim.trace, file=sys.stderr, flush=True)
        raise SystemExit(f"simulation failed: {sim.error}")
    stage("simulation", **sim.timings)

    card_extra = {
        "data": {"generator": "core.simulate.generate_dataset('phase', ...)", "size": args.size,
                 "cropped_to": args.grid,
                 "train": {"n": args.n_train, "seed": args.train_seed},
                 "val": {"n": args.n_val, "seed": args.val_seed}},
        "device": dev, "script": summary["command"],
        "simulation_s": sim.timings,
    }
    t = time.time()
    res = train(args, work, out, card_extra)
    train_wall = round(time.time() - t, 1)
    log(f"training: {res.stopped} at step {res.step}, best held-out WCA {res.best_val:.4f} at step "
        f"{res.best_step}, {train_wall} s wall")
    run_log = work / "run" / "log.json"
    if run_log.exists():
        shutil.copy(run_log, out / "log.json")
    hist = res.history
    facts = {"steps": res.step, "stopped": res.stopped, "best_step": res.best_step, "best_val_wca": res.best_val,
             "wall_s": train_wall, "elapsed_s": hist[-1]["elapsed_s"] if hist else None}
    if hist and hist[-1].get("elapsed_s"):
        facts["steps_per_s"] = round(res.step / hist[-1]["elapsed_s"], 3)
        facts["samples_per_s"] = round(res.step * args.batch / hist[-1]["elapsed_s"], 1)
    stage("training", **facts)

    export = out / f"{args.name}.keras"
    if not export.exists():
        raise SystemExit(f"no export was written to {export}: the run never finished an epoch")
    ref = reference_pair(args, work, export, backend)
    log(f"reference pair: {ref}")
    stage("reference", **ref)
    card_path = export.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["gpu_run"] = {"final_step": res.step, "stopped": res.stopped, "training_wall_s": train_wall,
                       "script_wall_s": since_t0(), "preflight": pre,
                       **{k: v for k, v in facts.items() if k.endswith("_per_s")}}
    write_json(card_path, card)
    files = split_if_large(export)
    summary["ok"] = True
    summary["files"] = sorted(p.name for p in out.iterdir() if p.is_file())
    stage("done", export=files)
    log(f"done in {since_t0()} s: {', '.join(summary['files'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
