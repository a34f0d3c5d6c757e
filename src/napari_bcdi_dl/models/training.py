"""A small, backend-agnostic fit loop shared by the models: checkpoints, resume, early stopping, a JSON log.

Why not ``model.fit``: a training run here is a background CPU job that may be killed at any moment and
resumed by a later session, possibly after the data or the step budget changed. This loop keeps the whole
state in one checkpoint (weights, optimizer state, step, RNG, best validation score, history), written
atomically every ``checkpoint_every`` steps, and it speaks the project's ``progress``/``cancel`` protocol.
It drives Keras only through ``compile`` / ``train_on_batch`` / ``test_on_batch`` /
``predict_on_batch``, so it runs unchanged on the TensorFlow, JAX and PyTorch backends.

Usage
-----
>>> result = fit(model, loss_fn, train_batches, val_batches, "runs/inpaint", steps=20000,
...              steps_per_epoch=500, rng=rng, resume=True)                # doctest: +SKIP

* ``train_batches``: an iterator of ``(x, y)`` numpy batches, endless (or at least ``steps`` long). When
  it draws its randomness lazily from the ``rng`` passed to :func:`fit`, a resumed run continues the
  same random stream (the RNG state is part of the checkpoint).
* ``val_batches``: a re-iterable (list) of ``(x, y)`` batches, the held-out set; evaluated every epoch.
* ``loss_fn(y_true, y_pred)``: any Keras loss (per-sample values; Keras averages them).

Output folder ``out_dir``::

    checkpoints/step_NNNNNNNN/{model.weights.h5, optimizer.npz, state.json}   the last ``keep`` of them
    checkpoints/latest            name of the newest complete checkpoint (written last, atomically)
    best.keras                    full model (no optimizer) with the best validation loss so far
    last.keras                    full model at the end of the run (or when stopped)
    log.json                      one record per epoch: step, losses, metrics, seconds, learning rate
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import BCDIError, Cancelled
from ..core.io.atomic import current_umask
from ..core.progress import CancelToken, ProgressFn, report
from ._keras import keras

Batch = tuple[np.ndarray, np.ndarray]
MetricsFn = Callable[[Any, Iterable[Batch]], dict]


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    step : the number of optimizer steps done (including those of resumed runs).
    best_val : the best validation loss seen (``inf`` if never evaluated).
    best_step : the step at which it was reached.
    stopped : ``"steps"`` (step budget reached), ``"time"`` (``max_seconds`` or ``stop_at`` reached),
        ``"early"`` (patience exhausted) or ``"cancelled"``.
    history : the epoch records (also in ``log.json``).
    out_dir : the run folder.
    """

    step: int
    best_val: float
    best_step: int
    stopped: str
    history: list = field(default_factory=list)
    out_dir: Path | None = None


def cosine_schedule(lr: float, steps: int, warmup: int = 200, floor: float = 0.05) -> Callable[[int], float]:
    """Linear warm-up for ``warmup`` steps, then cosine decay to ``floor · lr`` at ``steps``."""

    def schedule(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, steps - warmup))
        return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))

    return schedule


def time_cosine_schedule(lr: float, seconds: float, warmup: int = 200,
                         floor: float = 0.05) -> Callable[[int, float], float]:
    """Linear warm-up for ``warmup`` steps, then cosine decay to ``floor · lr`` at ``seconds`` of training.

    For a run with a wall-clock budget (``fit(max_seconds=...)``) rather than a step count: the decay
    follows the training time :func:`fit` reports (``elapsed_s``, resumed runs included), so the rate
    reaches its floor when the budget ends, whatever the speed of the machine. The returned callable has
    ``timed = True``: :func:`fit` calls it as ``schedule(step, elapsed_s)``.
    """
    if not seconds > 0:
        raise BCDIError(f"time budget {seconds} s must be positive")

    def schedule(step: int, elapsed: float = 0.0) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        t = min(1.0, max(0.0, elapsed) / seconds)
        return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))

    schedule.timed = True  # type: ignore[attr-defined]
    return schedule


def _lr_at(schedule: Callable, step: int, elapsed: float) -> float:
    return float(schedule(step, elapsed) if getattr(schedule, "timed", False) else schedule(step))


# ----------------------------------------------------------------------------------------------------------
# atomic helpers
def _write_json(path: Path, obj: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1, default=_json_default)
    os.chmod(tmp, 0o666 & ~current_umask())
    os.replace(tmp, path)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def save_model_atomic(model: Any, path: os.PathLike | str) -> Path:
    """Save ``model`` as ``.keras`` through a temporary file and a rename.

    A compiled model is saved as an uncompiled copy (same architecture and weights, no optimizer, no
    loss), so the file loads anywhere with ``keras.saving.load_model`` without the training code.
    """
    path = Path(path)
    if getattr(model, "compiled", False) or getattr(model, "optimizer", None) is not None:
        clone = model.__class__.from_config(model.get_config())  # no compile config, unlike clone_model
        clone.set_weights(model.get_weights())
        model = clone
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
    os.close(fd)
    try:
        model.save(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600 files; a saved model honours the umask
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# ----------------------------------------------------------------------------------------------------------
# checkpoints
def _optimizer_arrays(optimizer: Any) -> dict[str, np.ndarray]:
    ops = keras().ops
    return {f"v{i:04d}": np.asarray(ops.convert_to_numpy(v)) for i, v in enumerate(optimizer.variables)}


def save_checkpoint(out_dir: os.PathLike | str, model: Any, state: dict, keep: int = 2) -> Path:
    """Write a complete checkpoint folder, then point ``checkpoints/latest`` at it; prune old ones."""
    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{int(state['step']):08d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        model.save_weights(str(tmp / "model.weights.h5"))
        np.savez(tmp / "optimizer.npz", **_optimizer_arrays(model.optimizer))
        _write_json(tmp / "state.json", state)
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    latest = root / "latest"
    fd, tmpl = tempfile.mkstemp(prefix=".latest.", dir=root)
    with os.fdopen(fd, "w") as f:
        f.write(name)
    os.replace(tmpl, latest)
    done = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(out_dir: os.PathLike | str) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    root = Path(out_dir) / "checkpoints"
    latest = root / "latest"
    if latest.exists():
        path = root / latest.read_text().strip()
        if (path / "state.json").exists():
            return path
    done = sorted(p for p in root.glob("step_*") if (p / "state.json").exists())
    return done[-1] if done else None


def load_checkpoint(path: os.PathLike | str, model: Any) -> dict:
    """Restore weights and optimizer state of a compiled ``model`` from a checkpoint; return its state."""
    path = Path(path)
    opt = model.optimizer
    if not opt.built:
        opt.build(model.trainable_variables)
    model.load_weights(str(path / "model.weights.h5"))
    with np.load(path / "optimizer.npz") as f:
        arrays = [f[k] for k in sorted(f.files)]
    if len(arrays) != len(opt.variables):
        raise BCDIError(f"checkpoint {path} holds {len(arrays)} optimizer variables, the optimizer has "
                        f"{len(opt.variables)}: the model or optimizer changed; start a new run folder")
    for var, arr in zip(opt.variables, arrays):
        var.assign(arr)
    return json.loads((path / "state.json").read_text())


# ----------------------------------------------------------------------------------------------------------
def evaluate(model: Any, batches: Iterable[Batch]) -> float:
    """Mean loss of a compiled model over batches (weighted by batch size)."""
    total, n = 0.0, 0
    for x, y in batches:
        loss = model.test_on_batch(x, y)
        loss = loss[0] if isinstance(loss, (list, tuple)) else loss
        total += float(loss) * len(y)
        n += len(y)
    return total / max(n, 1)


def fit(
    model: Any,
    loss_fn: Any,
    train_batches: Iterator[Batch],
    val_batches: Iterable[Batch] | None,
    out_dir: os.PathLike | str,
    steps: int,
    *,
    steps_per_epoch: int = 500,
    learning_rate: float | Callable[[int], float] = 1e-3,
    optimizer: Any = None,
    checkpoint_every: int = 100,
    checkpoint_seconds: float = 600.0,
    patience: int | None = 10,
    min_delta: float = 0.0,
    max_seconds: float | None = None,
    stop_at: float | None = None,
    resume: bool = False,
    rng: np.random.Generator | None = None,
    metrics_fn: MetricsFn | None = None,
    on_epoch: Callable[[dict, Any], None] | None = None,
    jit_compile: Any = "auto",
    keep: int = 2,
    config: dict | None = None,
    log: Callable[[str], None] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> FitResult:
    """Train ``model`` for ``steps`` optimizer steps in total; see the module docstring.

    Parameters
    ----------
    model : an uncompiled (or compiled) Keras model; it is (re)compiled here with ``loss_fn``.
    loss_fn : Keras loss ``(y_true, y_pred) -> per-sample loss``.
    train_batches : endless iterator of ``(x, y)`` batches.
    val_batches : re-iterable held-out batches (None: no validation, no early stopping, no best.keras).
    out_dir : run folder (created).
    steps : total step budget, counted from the start of the run (a resumed run continues to ``steps``).
    steps_per_epoch : steps between validations / log records.
    learning_rate : a float, a schedule ``step -> lr`` (see :func:`cosine_schedule`), or a timed schedule
        ``(step, elapsed_s) -> lr`` (see :func:`time_cosine_schedule`).
    optimizer : a Keras optimizer (default Adam).
    checkpoint_every, checkpoint_seconds : save a checkpoint every that many steps or seconds,
        whichever comes first; also at every epoch end and when stopping.
    patience : stop after that many validations without an improvement larger than ``min_delta``
        (None: never stop early).
    max_seconds : stop (with a last validation and checkpoint) once the run's training time reaches this
        many seconds (``elapsed_s``: optimizer steps and data, not validation or checkpoints; resumed runs
        count their earlier time). None: no time limit.
    stop_at : stop the same way once the wall clock (``time.time()``) reaches this, validation included: a
        run that must end by a fixed time. None: no such limit.
    resume : continue from ``out_dir``'s latest checkpoint if there is one (else start fresh).
    rng : the Generator the data iterator draws from; its state is saved and restored.
    metrics_fn : ``metrics_fn(model, val_batches) -> dict`` of extra held-out metrics logged per epoch; when
        it returns ``"val_loss"`` too (one pass over the held-out set), the loop uses it as is.
    on_epoch : ``on_epoch(record, model)`` called after each epoch (e.g. to export weights).
    jit_compile : passed to ``model.compile``.
    keep : checkpoints kept on disk.
    config : JSON-able description of the run, stored in ``run.json`` (command, data, model...).
    log : ``log(line)`` for one human line per epoch (default: print, flushed).
    progress, cancel : steps done / ``steps``; on cancel a checkpoint is written, then ``Cancelled`` raised.
    """
    k = keras()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = log or (lambda line: print(line, flush=True))
    schedule = learning_rate if callable(learning_rate) else (lambda step, _lr=float(learning_rate): _lr)
    if optimizer is None:
        optimizer = k.optimizers.Adam(learning_rate=_lr_at(schedule, 0, 0.0))
    model.compile(optimizer=optimizer, loss=loss_fn, jit_compile=jit_compile)

    step, best_val, best_step, bad_epochs, history, elapsed = 0, math.inf, 0, 0, [], 0.0
    ckpt = latest_checkpoint(out) if resume else None
    if ckpt is not None:
        x0, y0 = next(iter(val_batches)) if val_batches is not None else next(train_batches)
        model.test_on_batch(x0[:1], y0[:1])  # builds the compiled metrics before restoring
        state = load_checkpoint(ckpt, model)
        step, best_val, best_step = int(state["step"]), float(state["best_val"]), int(state["best_step"])
        bad_epochs, elapsed = int(state.get("bad_epochs", 0)), float(state.get("elapsed_s", 0.0))
        if rng is not None and state.get("rng") is not None:
            rng.bit_generator.state = state["rng"]
        if state.get("keras_seed") is not None:
            k.utils.set_random_seed(int(state["keras_seed"]) + step)
        log_path = out / "log.json"
        history = json.loads(log_path.read_text()) if log_path.exists() else []
        history = [r for r in history if r.get("step", 0) <= step]
        log(f"resumed from {ckpt} at step {step} (best val {best_val:.5g} at step {best_step})")
    elif resume:
        log(f"no checkpoint in {out}: starting a new run")
    if config is not None:
        _write_json(out / "run.json", config)

    def state_dict() -> dict:
        return {"step": step, "best_val": best_val, "best_step": best_step, "bad_epochs": bad_epochs,
                "elapsed_s": elapsed, "rng": rng.bit_generator.state if rng is not None else None,
                "keras_seed": None, "time": time.strftime("%Y-%m-%d %H:%M:%S")}

    stopped = "steps"
    epoch_losses: list[float] = []
    t_epoch = time.perf_counter()
    t_ckpt = time.monotonic()
    t_last = time.perf_counter()
    last_saved = step
    try:
        while step < steps and not _time_up(elapsed, max_seconds, stop_at):
            report(progress, cancel, step, steps)
            x, y = next(train_batches)
            lr = _lr_at(schedule, step, elapsed)
            optimizer.learning_rate = lr
            loss = model.train_on_batch(x, y)
            loss = float(loss[0] if isinstance(loss, (list, tuple)) else loss)
            if not math.isfinite(loss):
                raise BCDIError(f"training diverged at step {step} (loss {loss}): lower the learning rate "
                                f"or resume from the last checkpoint in {out}")
            epoch_losses.append(loss)
            step += 1
            now = time.perf_counter()
            elapsed += now - t_last
            t_last = now
            time_up = _time_up(elapsed, max_seconds, stop_at)
            if step % steps_per_epoch == 0 or step == steps or time_up:
                record = {"epoch": len(history) + 1, "step": step, "train_loss": float(np.mean(epoch_losses)),
                          "lr": lr, "epoch_s": round(now - t_epoch, 2), "elapsed_s": round(elapsed, 1)}
                if val_batches is not None:
                    extra = metrics_fn(model, val_batches) if metrics_fn is not None else {}
                    if "val_loss" not in extra:
                        record["val_loss"] = evaluate(model, val_batches)
                    record.update(extra)
                    if record["val_loss"] < best_val - min_delta:
                        best_val, best_step, bad_epochs = record["val_loss"], step, 0
                        save_model_atomic(model, out / "best.keras")
                        record["best"] = True
                    else:
                        bad_epochs += 1
                record["time"] = time.strftime("%Y-%m-%d %H:%M:%S")
                history.append(record)
                _write_json(out / "log.json", history)
                log(" ".join(f"{k_}={_fmt(v)}" for k_, v in record.items()))
                if on_epoch is not None:
                    on_epoch(record, model)
                save_checkpoint(out, model, state_dict(), keep)
                last_saved, t_ckpt = step, time.monotonic()
                epoch_losses, t_epoch = [], time.perf_counter()
                t_last = time.perf_counter()
                if patience is not None and val_batches is not None and bad_epochs >= patience:
                    stopped = "early"
                    log(f"early stop: no improvement for {patience} epochs (best {best_val:.5g} at {best_step})")
                    break
                if time_up:
                    stopped = "time"
                    log(f"time budget reached at step {step} ({elapsed:.0f} s of training)")
                    break
            elif step - last_saved >= checkpoint_every or time.monotonic() - t_ckpt >= checkpoint_seconds:
                save_checkpoint(out, model, state_dict(), keep)
                last_saved, t_ckpt = step, time.monotonic()
        if stopped == "steps" and step < steps:  # the loop ended on the time limit
            stopped = "time"
        report(progress, cancel, step, steps)
    except Cancelled:
        if step != last_saved:
            save_checkpoint(out, model, state_dict(), keep)
        log(f"cancelled at step {step}; checkpoint saved, resume with resume=True")
        raise
    if step != last_saved:
        save_checkpoint(out, model, state_dict(), keep)
    save_model_atomic(model, out / "last.keras")
    return FitResult(step=step, best_val=best_val, best_step=best_step, stopped=stopped, history=history,
                     out_dir=out)


def _time_up(elapsed: float, max_seconds: float | None, stop_at: float | None) -> bool:
    return (max_seconds is not None and elapsed >= max_seconds) or (stop_at is not None and time.time() >= stop_at)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.5g}"
    return str(v)
