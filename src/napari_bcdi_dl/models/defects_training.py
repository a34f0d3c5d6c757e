"""Training of the defect classifier (``bcdi-dl train defects``) on ``bcdi-dl dataset defects`` shards.

Every pattern is brought to the network input once (:func:`.defects.preprocess`: centre of mass, 64³
crop/pad, normalised log-intensity) and kept as float16 in memory. Batches draw random patterns with the
symmetries that keep the class: a flip of each axis and a permutation of the axes. The loop is
:func:`.training.fit` (checkpoints, resume, early stopping); each held-out pass logs the 4-class accuracy,
the detection accuracy (dislocation vs none), the type accuracy (edge vs screw, among true edge and screw
patterns) and the confusion matrix, and the best model is exported with its ``.json`` card.

``init``: start from the weights of a saved classifier of the same architecture (e.g. the shipped
``defects_cnn.keras``) instead of a fresh network. ``keep_g_axis`` (``"z"``, ``"y"`` or ``"x"``): the
patterns have the Bragg vector G along that array axis (``bcdi-dl dataset defects --g-axis``; checked
against each set's manifest); they are transposed so that it becomes axis 0 (:func:`.defects.orient_to_g`,
as inference does) and augmented only with the symmetries that keep axis 0 as G's axis (flips of every
axis, the swap of axes 1 and 2): the G-aware model ``defects_gz`` (docs/defects.md).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..core.errors import BCDIError
from ..core.progress import CancelToken, ProgressFn
from .defects import (
    GRID,
    LABELS,
    build_defect_net,
    check_g_axis,
    model_grid,
    orient_to_g,
    predict_probabilities,
    preprocess,
)


def load_inputs(dirs: Sequence[str | os.PathLike], size: int = GRID, limit: int | None = None,
                log=print, allow_incomplete: bool = False,
                g_axis: str | None = None) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Network inputs (n, S, S, S) float16, labels (n,) int and a description of each dataset folder
    (``allow_incomplete``: read the completed shards of a set still being made). ``g_axis``: every set
    must have been made with G along that axis (its manifest's ``g_direction``); the patterns are turned
    so that it is axis 0."""
    from ..core.simulate.datasets import iter_shards, read_manifest

    xs, ys, info = [], [], []
    n = 0
    t0 = time.perf_counter()
    for d in dirs:
        m = read_manifest(d)
        if m.get("kind") != "defects":
            raise BCDIError(f"{d} is a {m.get('kind')} dataset, not a defects one: make it with "
                            "'bcdi-dl dataset defects'")
        g_dir = m.get("g_direction") or "random"
        if g_axis is not None and g_dir != g_axis:
            raise BCDIError(f"{d} was made with G direction {g_dir}, not along {g_axis}: make it with "
                            f"'bcdi-dl dataset defects ... --g-axis {g_axis}' or change --keep-g-axis")
        info.append({"dir": str(d), "n": m["n"], "seed": m["seed"], "size": m["size"], "g_axis": g_dir})
        for shard in iter_shards(d, keys=["intensity", "label"], allow_incomplete=allow_incomplete,
                                 need=None if limit is None else limit - n):
            for a, lab in zip(shard["intensity"], shard["label"]):
                if limit is not None and n >= limit:
                    break
                xs.append(preprocess(orient_to_g(a, g_axis), size).astype(np.float16))
                ys.append(int(lab))
                n += 1
            if limit is not None and n >= limit:
                break
    if not xs:
        raise BCDIError(f"no patterns in {', '.join(map(str, dirs))}")
    log(f"loaded {n} patterns from {', '.join(map(str, dirs))} in {time.perf_counter() - t0:.0f} s")
    return np.stack(xs), np.asarray(ys, np.int64), info


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random axis permutation and random flips of one (S, S, S) input (class-preserving symmetries)."""
    x = np.transpose(x, rng.permutation(3))
    flips = tuple(a for a in range(3) if rng.random() < 0.5)
    return np.flip(x, flips) if flips else x


def augment_keep_g(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random symmetries of one (S, S, S) input with G along axis 0 that keep it there: the swap of axes 1
    and 2 (probability 1/2) and a flip of each axis (1/2 each). A flip reverses G, which the centred
    intensity does not tell from G itself (Friedel), so the class and G's axis are kept."""
    if rng.random() < 0.5:
        x = np.transpose(x, (0, 2, 1))
    flips = tuple(a for a in range(3) if rng.random() < 0.5)
    return np.flip(x, flips) if flips else x


AUGMENTATIONS = {
    None: "axis permutations and flips",
    "g": "flips of every axis and the swap of axes 1 and 2 (G kept along axis 0)",
}


def train_batches(x: np.ndarray, y: np.ndarray, batch: int, rng: np.random.Generator,
                  aug=augment) -> Iterator:
    """Endless balanced-on-average batches ``(x (b, S, S, S, 1) float32, y (b,) int)``."""
    while True:
        idx = rng.integers(0, len(x), size=batch)
        xb = np.stack([aug(x[i], rng) for i in idx]).astype(np.float32)[..., None]
        yield xb, y[idx]


def metrics(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Held-out metrics of probabilities (n, 4) against true labels (n,): see the module docstring."""
    pred = probs.argmax(axis=1)
    cm = np.zeros((len(LABELS), len(LABELS)), int)
    for t, p in zip(labels, pred):
        cm[t, p] += 1
    defect_true = labels != 0
    defect_pred = probs[:, 0] < 0.5
    es = (labels == 1) | (labels == 2)
    type_pred = np.where(probs[:, 1] >= probs[:, 2], 1, 2)
    eps = 1e-7
    ce = float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], eps, 1.0))))
    return {
        "val_loss": ce,
        "accuracy": float(np.mean(pred == labels)),
        "detection_accuracy": float(np.mean(defect_true == defect_pred)),
        "false_positive_rate": float(np.mean(defect_pred[~defect_true])) if (~defect_true).any() else None,
        "miss_rate": float(np.mean(~defect_pred[defect_true])) if defect_true.any() else None,
        "type_accuracy": float(np.mean(type_pred[es] == labels[es])) if es.any() else None,
        "confusion_matrix": cm.tolist(),
        "n": len(labels),
    }


def train_defects(data: Sequence[str], val: Sequence[str], out: str, *, steps: int = 3000, batch: int = 16,
                  steps_per_epoch: int = 250, lr: float = 1e-3, patience: int | None = 8,
                  checkpoint_every: int = 100, resume: bool = False, seed: int = 0,
                  train_limit: int | None = None, val_limit: int | None = None,
                  widths: Sequence[int] = (8, 16, 32, 64), export: str | None = None,
                  max_seconds: float | None = None, command: str = "", init: str | None = None,
                  keep_g_axis: str | None = None,
                  progress: ProgressFn | None = None, cancel: CancelToken | None = None):
    """Train the classifier; see the module docstring. Returns the :class:`.training.FitResult`."""
    from ._keras import keras
    from .training import cosine_schedule, fit, save_model_atomic, time_cosine_schedule

    g_axis = check_g_axis(keep_g_axis, "train defects --keep-g-axis")
    k = keras()
    k.utils.set_random_seed(int(seed))
    rng = np.random.default_rng(int(seed))
    if init is not None:  # refuse a wrong file before minutes of loading
        from .registry import model_path

        model_path(str(init))
    xt, yt, tinfo = load_inputs(data, limit=train_limit, g_axis=g_axis)
    xv, yv, vinfo = load_inputs(val, limit=val_limit, g_axis=g_axis)
    if init is not None:
        model = load_init(str(init))
        widths = init_widths(model)
    else:
        model = build_defect_net(GRID, tuple(int(w) for w in widths))
    val_batches = [(xv[i:i + 32].astype(np.float32)[..., None], yv[i:i + 32]) for i in range(0, len(xv), 32)]
    t_start = time.time()
    card_base = {
        "model": "defects", "labels": list(LABELS), "grid": GRID, "command": command,
        "data": tinfo, "val": vinfo, "n_train": len(xt), "n_val": len(xv), "steps": int(steps),
        "batch": int(batch), "lr": float(lr), "seed": int(seed), "max_seconds": max_seconds, "widths": [int(w) for w in widths],
        "norm": "group (4 groups)", "params": int(model.count_params()), "input": "defects.preprocess: COM-centred 64³ crop/pad, "
        "log(1+I)/max", "augmentation": AUGMENTATIONS["g" if g_axis else None],
        "g_axis": g_axis, "init": str(init) if init is not None else None,
        "backend": k.backend.backend(), "keras": k.__version__,
        "host": f"{platform.machine()} {os.cpu_count()} cores",
    }

    def metrics_fn(m, batches) -> dict:
        probs = np.concatenate([predict_probabilities(m, xb[..., 0], batch_size=32) for xb, _ in batches])
        return metrics(probs, np.concatenate([yb for _, yb in batches]))

    def on_epoch(record: dict, m) -> None:
        if export and record.get("best"):
            path = save_model_atomic(m, export)
            card = dict(card_base, step=record["step"], trained_s=record["elapsed_s"],
                        wall_s=round(time.time() - t_start, 1),
                        held_out={kk: record[kk] for kk in ("val_loss", "accuracy", "detection_accuracy",
                                                            "false_positive_rate", "miss_rate",
                                                            "type_accuracy", "confusion_matrix", "n")},
                        exported=time.strftime("%Y-%m-%dT%H:%M:%S"))
            Path(path).with_suffix(".json").write_text(json.dumps(card, indent=1))

    # with a time budget the cosine decay follows the training time, so the rate is annealed when it ends
    schedule = (time_cosine_schedule(float(lr), float(max_seconds), 100) if max_seconds
                else cosine_schedule(float(lr), int(steps), 100))
    loss = k.losses.SparseCategoricalCrossentropy()
    aug = augment_keep_g if g_axis else augment
    return fit(model, loss, train_batches(xt, yt, int(batch), rng, aug), val_batches, out, int(steps),
               steps_per_epoch=int(steps_per_epoch), learning_rate=schedule,
               checkpoint_every=int(checkpoint_every), patience=patience, resume=resume, rng=rng,
               metrics_fn=metrics_fn, on_epoch=on_epoch, max_seconds=max_seconds, config=card_base,
               progress=progress, cancel=cancel)


def load_init(path: str):
    """A private copy of a saved defect classifier to continue training (``--init``), checked to be one:
    a cubic :data:`GRID` input and :data:`LABELS` outputs; a one-line BCDIError otherwise."""
    from .registry import load_model

    model = load_model(path, fresh=True)
    if model_grid(model) != GRID or tuple(model.output_shape) != (None, len(LABELS)):
        shapes = f"input {tuple(model.input_shape)} / output {tuple(model.output_shape)}"
        raise BCDIError(f"--init {path}: {shapes} "
                        f"is not a defect classifier's ({GRID}³ -> {len(LABELS)} classes); give a defects "
                        ".keras file")
    return model


def init_widths(model) -> tuple[int, ...]:
    """Channels of the strided levels of a :func:`.defects.build_defect_net` model (for the card)."""
    out, level = [], 0
    while True:
        try:
            out.append(int(model.get_layer(f"down{level}").filters))
        except ValueError:
            break
        level += 1
    if not out:
        raise BCDIError(f"--init {model.name}: not a defects network (no 'down0' layer); give a defects "
                        ".keras file")
    return tuple(out)
