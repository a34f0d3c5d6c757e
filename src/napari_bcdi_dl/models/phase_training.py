"""Training of the reciprocal-space phase network: data pipeline from simulated phase sets, and the run.

``bcdi-dl train phase --data DIR [DIR ...] --val DIR --out RUN [--export WEIGHTS]`` (or
``python -m napari_bcdi_dl.models.phase_training ...``) trains :func:`.phase.build_phase_net` with the WCA
loss (:mod:`.wca`) through the shared fit loop (:mod:`.training`: checkpoints, resume, held-out
validation). A run folder is resumed automatically: kill it at any time and start the same command again.

Data (``core.simulate.generate_dataset("phase", ...)`` shards): each sample gives the noise-free
``expected`` intensity and the reciprocal ``phase``; samples larger than the model grid are centre-cropped
(cropping reciprocal space keeps the oversampling, see ``core/reciprocal.py``). Every training sample is
made fresh from them:

* Poisson noise at a random photon level (``10**U(counts_log10)`` photons at the maximum), so one
  simulated pattern gives many noisy inputs;
* a random element of the 48 symmetries of the cube grid (axis flips and permutations), applied to the
  intensity and the phase alike — flipping a q axis of ``I`` is the pattern of the object flipped along
  that axis, whose field is the flipped field, so ``(I, φ)`` stays an exact pair;
* input ``core.reciprocal.log_normalise(I)``; the same array, normalised, weighs the WCA loss.

Curriculum: the strain cap (phase range of the object) rises linearly from ``curriculum_start`` to the
largest in the set over ``curriculum_steps`` steps, low strain first.

On a GPU (``scripts/gpu_train_phase.sh``, ``docs/gpu-training.md``): ``--precision mixed_bfloat16`` computes
in bfloat16 with float32 weights (the exported file is plain float32), ``--data-threads N`` makes the
batches on N threads ahead of the step (:func:`parallel_train_batches`), ``--time-budget S`` trains for a
wall-clock budget with the cosine decay following the time, and ``--widths`` sets every level's width.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..core.errors import BCDIError
from ..core.reciprocal import crop_or_pad, log_normalise
from .wca import pack_targets, wca_numpy

PI = math.pi
DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: Default architecture of ``bcdi-dl train phase`` (the second-session shipped model; the third-session one
#: is ``--base 12 --depth 4 --growth 2 --stem none``, see docs/models.md, "Phase model").
DEFAULT_ARCH = {"size": 32, "base": 8, "depth": 3, "growth": 3.0, "stem": "patch", "dilations": (1, 2, 3),
                "n_dilated": 2}
#: Compute precisions of ``--precision`` (weights are float32 in all of them).
PRECISIONS = ("float32", "mixed_bfloat16")


# ---------------------------------------------------------------------------------------------- data
class PhaseSet:
    """Noise-free intensities and reciprocal phases of phase sets, cropped to the model grid, in memory.

    Attributes
    ----------
    expected : float32 (n, S, S, S) noise-free intensity.
    intensity : float32 (n, S, S, S) the noisy counts of the set (held-out evaluation), or None.
    phase : float16 (n, S, S, S) reciprocal phase, of the object centred by :func:`centre_phase` unless
        ``centre=False``.
    phase_range : float64 (n,) object phase range (radians), the strain proxy of the curriculum.
    oversampling : float64 (n, 3).

    ``workers`` > 1 centres the phases on that many threads (numpy's FFTs release the GIL). An unfinished
    set (its generation cut) is refused unless ``allow_incomplete`` or its completed shards hold the first
    ``max_samples``.
    """

    def __init__(self, dirs: Sequence[str | Path], size: int, *, max_samples: int | None = None,
                 keep_intensity: bool = False, allow_incomplete: bool = False, centre: bool = True,
                 per_dir: bool = False, workers: int = 1) -> None:
        keys = ["expected", "phase", "params"] + (["intensity"] if keep_intensity else [])
        exp, ph, inten, pr, osr = [], [], [], [], []
        pool = ThreadPoolExecutor(int(workers)) if centre and int(workers) > 1 else None
        try:
            self._read(dirs, size, keys, max_samples, per_dir, allow_incomplete, centre, keep_intensity, pool,
                       exp, ph, inten, pr, osr)
            ph = [f.result() if isinstance(f, Future) else f for f in ph]
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        if not exp:
            raise BCDIError(f"no phase samples found in {', '.join(map(str, dirs))}: make a set with "
                            "'bcdi-dl dataset phase' first")
        self.size = int(size)
        self.expected = np.stack(exp)
        self.phase = np.stack(ph)
        self.intensity = np.stack(inten) if keep_intensity else None
        self.phase_range = np.asarray(pr, dtype=np.float64)
        self.oversampling = np.asarray(osr, dtype=np.float64)

    def _read(self, dirs, size, keys, max_samples, per_dir, allow_incomplete, centre, keep_intensity, pool,
              exp, ph, inten, pr, osr) -> None:
        from ..core.simulate import iter_shards

        n = 0
        for d in dirs:
            if per_dir:
                n = 0
            need = None if max_samples is None else max_samples - n
            for shard in iter_shards(d, keys=keys, allow_incomplete=allow_incomplete, need=need):
                m = len(shard["expected"])
                if max_samples is not None:
                    m = min(m, max_samples - n)
                for i in range(m):
                    e = self._crop(shard["expected"][i], size)
                    phi = self._crop(shard["phase"][i], size)
                    exp.append(e)
                    if pool is not None:
                        ph.append(pool.submit(_centred_f16, e, phi))
                    else:
                        ph.append((centre_phase(e, phi) if centre else phi).astype(np.float16))
                    if keep_intensity:
                        inten.append(self._crop(shard["intensity"][i], size))
                    p = shard["params"][i]
                    pr.append(float(p.get("phase_range", 0.0)))
                    osr.append(p.get("oversampling", [np.nan] * 3))
                n += m
                if max_samples is not None and n >= max_samples:
                    break
            if max_samples is not None and n >= max_samples and not per_dir:
                break

    @staticmethod
    def _crop(a: np.ndarray, size: int) -> np.ndarray:
        if a.shape == (size,) * 3:
            return np.asarray(a)
        if min(a.shape) < size:
            raise BCDIError(f"phase set sample of shape {a.shape} is smaller than the model grid {size}³: "
                            "make the set at the model size or larger")
        return crop_or_pad(a, size)

    def __len__(self) -> int:
        return len(self.expected)


def centre_phase(intensity: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """The reciprocal phase of the same object translated so that its centre of mass (of ``|obj|²``) sits
    exactly at the array centre ``N // 2`` (sub-voxel, by a linear phase ramp in q).

    The intensity does not change under a translation, so the ramp a translation adds to the phase cannot
    be predicted from it: without this canonical centring the targets carry an unpredictable ramp (the
    simulated crystals sit up to ~1 voxel off centre). Point inversion about ``N // 2`` (the twin) and the
    grid symmetries of :func:`apply_symmetry` keep a centred object centred.
    """
    amp = np.sqrt(np.maximum(np.asarray(intensity, dtype=np.float64), 0.0))
    phi = np.asarray(phase, dtype=np.float64)
    obj = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(amp * np.exp(1j * phi))))
    w = np.abs(obj) ** 2
    total = w.sum()
    if not total > 0:
        return np.asarray(phase, dtype=np.float32)
    ramp = np.zeros_like(phi)
    for ax, n in enumerate(phi.shape):
        prof = w.sum(axis=tuple(i for i in range(3) if i != ax))
        delta = float((prof * np.arange(n)).sum() / total) - n // 2
        k = (np.arange(n) - n // 2).reshape([-1 if i == ax else 1 for i in range(3)])
        ramp = ramp + 2 * np.pi * k * delta / n
    return np.angle(np.exp(1j * (phi + ramp))).astype(np.float32)


def _centred_f16(expected: np.ndarray, phase: np.ndarray) -> np.ndarray:
    return centre_phase(expected, phase).astype(np.float16)


def symmetry(rng: np.random.Generator) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """A random element of the cube grid's 48 symmetries: an axis permutation and per-axis flips."""
    return tuple(int(v) for v in rng.permutation(3)), tuple(bool(v) for v in rng.random(3) < 0.5)


def apply_symmetry(a: np.ndarray, perm: Sequence[int], flips: Sequence[bool]) -> np.ndarray:
    """Apply a symmetry from :func:`symmetry` to a 3D array (the same to intensity and phase)."""
    out = np.transpose(a, perm)
    axes = tuple(i for i, f in enumerate(flips) if f)
    return np.ascontiguousarray(np.flip(out, axes) if axes else out)


def noisy_input(expected: np.ndarray, rng: np.random.Generator, counts_log10: tuple[float, float]) -> np.ndarray:
    """Poisson counts of ``expected`` rescaled to a random maximum of ``10**U(counts_log10)`` photons."""
    peak = float(expected.max())
    if not peak > 0:
        return np.zeros_like(expected)
    scale = 10 ** rng.uniform(*counts_log10) / peak
    return rng.poisson(expected.astype(np.float64) * scale).astype(np.float32)


def network_input(counts: np.ndarray) -> np.ndarray:
    """``log_normalise`` of noisy counts; zeros when a draw at a low photon level has no count at all."""
    return log_normalise(counts) if counts.max() > 0 else np.zeros_like(counts)


def strain_cap(step: int, start: float, end: float, ramp: int) -> float:
    """Largest phase range allowed at ``step`` by the curriculum."""
    if ramp <= 0:
        return end
    return start + (end - start) * min(1.0, max(0, step) / ramp)


class _Curriculum:
    """Draws the sample indices of a batch under the curriculum's strain cap."""

    def __init__(self, data: PhaseSet, batch: int, start: float, ramp: int) -> None:
        self.batch, self.start, self.ramp = int(batch), float(start), int(ramp)
        self.top = float(data.phase_range.max()) + 1e-6
        self.order = np.argsort(data.phase_range)
        self.sorted_pr = data.phase_range[self.order]

    def indices(self, step: int, rng: np.random.Generator) -> np.ndarray:
        cap = strain_cap(step, self.start, self.top, self.ramp)
        n_ok = max(self.batch, int(np.searchsorted(self.sorted_pr, cap, side="right")))
        return self.order[rng.integers(0, min(n_ok, len(self.order)), size=self.batch)]


def training_sample(data: PhaseSet, i: int, rng: np.random.Generator, counts_log10: tuple[float, float],
                    augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One training pair of sample ``i``: (log-normalised noisy intensity, its phase), both (S, S, S)."""
    x = network_input(noisy_input(data.expected[i], rng, counts_log10))
    ph = data.phase[i].astype(np.float32)
    if augment:
        perm, flips = symmetry(rng)
        x, ph = apply_symmetry(x, perm, flips), apply_symmetry(ph, perm, flips)
    return x, ph


def train_batches(data: PhaseSet, batch: int, rng: np.random.Generator, *, start_step: int = 0,
                  curriculum_start: float = 3 * PI, curriculum_steps: int = 0,
                  counts_log10: tuple[float, float] = (3.5, 8.0), augment: bool = True) -> Iterator:
    """Endless ``(x, y)`` batches: x (b, S, S, S, 1) log-normalised noisy intensity, y (b, S, S, S, 2)."""
    step = int(start_step)
    cur = _Curriculum(data, batch, curriculum_start, curriculum_steps)
    while True:
        xs, ys = [], []
        for i in cur.indices(step, rng):
            x, ph = training_sample(data, i, rng, counts_log10, augment)
            xs.append(x)
            ys.append(ph)
        x = np.stack(xs)
        yield x[..., None], pack_targets(np.stack(ys), x)
        step += 1


def _fill_sample(data: PhaseSet, i: int, rng: np.random.Generator, counts_log10: tuple[float, float],
                 augment: bool, x_out: np.ndarray, y_out: np.ndarray) -> None:
    x, ph = training_sample(data, i, rng, counts_log10, augment)
    x_out[..., 0] = x
    y_out[..., 0] = ph
    y_out[..., 1] = x


def parallel_train_batches(data: PhaseSet, batch: int, seed: int, *, threads: int, start_step: int = 0,
                           curriculum_start: float = 3 * PI, curriculum_steps: int = 0,
                           counts_log10: tuple[float, float] = (3.5, 8.0), augment: bool = True,
                           prefetch: int | None = None) -> Iterator:
    """The batches of :func:`train_batches`, made by ``threads`` threads ahead of the training step.

    A GPU consumes a 64³ batch faster than one core makes it (Poisson noise, logarithm, symmetry: ~15 ms
    per sample); numpy releases the GIL in all of these, so threads scale. Reproducible per step whatever
    the number of threads: batch ``s`` draws its samples from ``default_rng([seed, s])`` and sample ``j``
    its noise and symmetry from ``default_rng([seed, s, j])``, so a resumed run (``start_step``) continues
    the same stream without an RNG state (a different stream from :func:`train_batches`'). ``prefetch``
    batches are in the making at any time (default: enough to keep every thread busy).
    """
    threads = max(1, int(threads))
    if int(seed) < 0:
        raise BCDIError(f"seed {seed} must be a non-negative integer")
    prefetch = int(prefetch or max(2, -(-2 * threads // batch) + 1))
    cur = _Curriculum(data, batch, curriculum_start, curriculum_steps)
    shape = (int(batch),) + (data.size,) * 3
    pool = ThreadPoolExecutor(threads, thread_name_prefix="phase-batches")
    pending: deque = deque()

    def submit(step: int) -> None:
        idx = cur.indices(step, np.random.default_rng([int(seed), step]))
        x = np.empty(shape + (1,), np.float32)
        y = np.empty(shape + (2,), np.float32)
        futs = [pool.submit(_fill_sample, data, int(i), np.random.default_rng([int(seed), step, j]),
                            counts_log10, augment, x[j], y[j]) for j, i in enumerate(idx)]
        pending.append((x, y, futs))

    try:
        step = int(start_step)
        for s in range(step, step + prefetch):
            submit(s)
        while True:
            x, y, futs = pending.popleft()
            for f in futs:
                f.result()
            submit(step + prefetch)
            step += 1
            yield x, y
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def validation_batches(data: PhaseSet, batch: int) -> list:
    """Fixed held-out batches from the set's own noisy counts (no augmentation)."""
    if data.intensity is None:
        raise BCDIError("validation set loaded without its noisy intensity (keep_intensity=True)")
    out = []
    for i in range(0, len(data), batch):
        x = np.stack([log_normalise(a) for a in data.intensity[i:i + batch]])
        out.append((x[..., None], pack_targets(data.phase[i:i + batch].astype(np.float32), x)))
    return out


def strain_bins(phase_range: np.ndarray) -> dict[str, np.ndarray]:
    """Held-out groups: low strain (< 2π), 2π–3.5π, 3.5π–5π."""
    return {"low": phase_range < 2 * PI, "mid": (phase_range >= 2 * PI) & (phase_range < 3.5 * PI),
            "high": phase_range >= 3.5 * PI}


def held_out_metrics(model, batches: list, phase_range: np.ndarray) -> dict:
    """WCA (numpy) of the predictions on the held-out batches, overall and per strain group.

    ``val_loss`` is the same WCA (the training loss), so the fit loop needs no second pass."""
    vals = []
    for x, y in batches:
        pred = np.asarray(model.predict_on_batch(x))[..., 0]
        vals.append(wca_numpy(y[..., 0], pred, y[..., 1], per_sample=True))
    v = np.concatenate(vals)
    out = {"val_wca": float(v.mean())}
    out["val_loss"] = out["val_wca"]
    for name, sel in strain_bins(phase_range[:len(v)]).items():
        if sel.any():
            out[f"val_wca_{name}"] = float(v[sel].mean())
    return out


# ---------------------------------------------------------------------------------------------- model I/O
def with_precision(model, precision: str, *, float32_layers: Sequence[str] = ("phase",)):
    """An uncompiled copy of a functional model whose layers compute in ``precision`` (weights copied).

    ``"mixed_bfloat16"``: bfloat16 computations with float32 weights, except the layers named in
    ``float32_layers`` (the output: the phase must not be rounded to 8 bits of mantissa before the loss).
    ``"float32"`` turns a mixed-precision model back into a plain one: what is saved and shipped.
    """
    from ._keras import keras

    if precision not in PRECISIONS:
        raise BCDIError(f"precision {precision!r} unknown: use one of {', '.join(PRECISIONS)}")
    config = model.get_config()
    for layer in config["layers"]:
        if layer.get("class_name") == "InputLayer":
            continue
        name = "float32" if layer["config"].get("name") in float32_layers else precision
        layer["config"]["dtype"] = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
                                    "registered_name": None}
    copy = keras().Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def build_model(arch: dict, precision: str = "float32"):
    """:func:`.phase.build_phase_net` of ``arch`` computing in ``precision`` (see :func:`with_precision`)."""
    from .phase import build_phase_net

    model = build_phase_net(**arch)
    return model if precision == "float32" else with_precision(model, precision)


def export_model(model, path: str | Path, meta: dict) -> Path:
    """Write the model (no optimizer) to ``path`` and its card ``path.with_suffix('.json')``, atomically.

    The file is always plain float32 (a mixed-precision model is converted), so it loads and predicts the
    same way on every backend and device."""
    from ..core.io.atomic import atomic_path
    from .training import save_model_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # an uncompiled float32 copy: the file holds no optimizer state, no loss, no mixed-precision policy
    bare = with_precision(model, "float32", float32_layers=())
    save_model_atomic(bare, path)
    with atomic_path(path.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=1, sort_keys=True, default=float))
    return path


# ---------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The phase model's own options of ``bcdi-dl train phase`` (``cli/train.py`` adds the common ones:
    ``--data --val --out --epochs --steps --steps-per-epoch --batch --lr --patience --checkpoint-every
    --resume --seed --export --val-limit --quiet``)."""
    a = parser.add_argument
    a("--size", type=int, default=DEFAULT_ARCH["size"], help="model grid, 32 or 64 (default 32)")
    a("--base", type=int, default=DEFAULT_ARCH["base"], help="channels of the first level (default 8)")
    a("--depth", type=int, default=DEFAULT_ARCH["depth"], help="down-samplings (default 3)")
    a("--growth", type=float, default=DEFAULT_ARCH["growth"], help="width factor per level (default 3)")
    a("--stem", choices=("none", "patch"), default=DEFAULT_ARCH["stem"],
      help="'patch' (default): the U-Net runs at half resolution behind a 2³ patch stem")
    a("--norm", choices=("batch", "group", "none"), default="batch",
      help="normalisation after each convolution: 'batch' (default, the shipped models), 'group' "
           "(GroupNormalization, up to 8 groups: independent of the batch), 'none'")
    a("--warmup", type=int, default=200, help="learning-rate warm-up steps (default 200)")
    a("--train-limit", type=int, default=None, help="use at most that many training samples")
    a("--curriculum-steps", type=int, default=1500,
      help="steps over which the strain cap rises to the largest strain of the set (default 1500)")
    a("--curriculum-start", type=float, default=3.0, help="initial strain cap in units of π (default 3)")
    a("--counts-log10", type=float, nargs=2, default=(3.5, 8.0), metavar=("LO", "HI"),
      help="range of log10 photons at the maximum for the noise augmentation (default 3.5 8)")
    a("--init", default=None, metavar="MODEL.keras",
      help="start a new run from the weights of this model (same architecture; ignored when resuming)")
    a("--widths", type=int, nargs="+", default=None, metavar="W",
      help="channels of every level, full resolution first, the bottleneck last (sets the depth to their "
           "number minus one; replaces --base/--depth/--growth)")
    a("--precision", choices=PRECISIONS, default="float32",
      help="compute precision; 'mixed_bfloat16' on a GPU (weights and the exported file stay float32)")
    a("--time-budget", type=float, default=None, metavar="SECONDS",
      help="train for this many seconds of training time (the cosine decay follows the time; --steps, if "
           "given, still caps the run)")
    a("--stop-by", type=float, default=None, metavar="UNIX_TIME",
      help="stop training by this wall-clock time (seconds since 1970, validation included): the time "
           "budget shrinks to fit")
    a("--data-threads", type=int, default=0, metavar="N",
      help="make the training batches on N threads ahead of the step (a GPU needs most cores; 0: in the "
           "training loop, default; the random stream then differs)")
    a("--load-threads", type=int, default=1, metavar="N", help="threads centring the phases at load time")
    return parser


def add_phase_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """All the arguments of ``bcdi-dl train phase`` for a stand-alone parser (common ones included)."""
    a = parser.add_argument
    a("--data", nargs="+", required=True, metavar="DIR", help="phase set folder(s) (bcdi-dl dataset phase)")
    a("--val", nargs="+", required=True, metavar="DIR", help="held-out phase set(s) (other seeds)")
    a("--out", required=True, metavar="RUN", help="run folder: checkpoints, log.json, best.keras")
    a("--epochs", type=int, default=None)
    a("--steps", type=int, default=None, help="total optimizer steps (default 20000)")
    a("--steps-per-epoch", type=int, default=250)
    a("--batch", type=int, default=8)
    a("--lr", type=float, default=1e-3)
    a("--patience", type=int, default=0, help="early stopping patience in epochs (0: never)")
    a("--checkpoint-every", type=int, default=50)
    a("--resume", action="store_true", help="continue from the last checkpoint in --out")
    a("--seed", type=int, default=0)
    a("--export", metavar="PATH.keras", default=None,
      help="write the best model there (with a .json card) whenever the held-out loss improves")
    a("--val-limit", type=int, default=96, help="held-out samples evaluated each epoch")
    a("--quiet", action="store_true")
    return add_arguments(parser)


def _total_steps(args: argparse.Namespace) -> int:
    if getattr(args, "epochs", None) is not None and getattr(args, "steps", None) is not None:
        raise BCDIError("give --epochs or --steps, not both")
    if getattr(args, "epochs", None) is not None:
        return int(args.epochs) * int(args.steps_per_epoch)
    return int(getattr(args, "steps", None) or 20000)


def run_training(args: argparse.Namespace, *, progress=None, cancel=None):
    """Run (or resume) a phase-network training from parsed arguments; return the fit loop's FitResult."""
    from ._keras import keras
    from .training import cosine_schedule, fit, latest_checkpoint, time_cosine_schedule
    from .wca import wca_loss

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budget = getattr(args, "time_budget", None)
    stop_by = getattr(args, "stop_by", None)
    timed = budget is not None or stop_by is not None
    if budget is not None and not budget > 0:
        raise BCDIError(f"--time-budget {budget}: give a positive number of seconds")
    # a timed run stops on its budget; --steps/--epochs, if given, still cap it
    steps = _total_steps(args) if not timed or args.steps is not None or args.epochs is not None else 10**9
    precision = getattr(args, "precision", None) or "float32"
    if precision not in PRECISIONS:
        raise BCDIError(f"--precision {precision!r} unknown: use one of {', '.join(PRECISIONS)}")
    val_dirs = [args.val] if isinstance(args.val, (str, Path)) else list(args.val)
    val_limit = getattr(args, "val_limit", None) or 96
    load_threads = max(1, int(getattr(args, "load_threads", None) or 1))
    t0 = time.time()
    train = PhaseSet(args.data, args.size, max_samples=getattr(args, "train_limit", None), workers=load_threads)
    val = PhaseSet(val_dirs, args.size, max_samples=val_limit, keep_intensity=True, per_dir=True,
                   workers=load_threads)
    print(f"phase training: {len(train)} training samples, {len(val)} held-out, loaded in "
          f"{time.time() - t0:.0f} s", flush=True)
    start_step, start_elapsed = 0, 0.0
    ckpt = latest_checkpoint(out) if args.resume else None
    if ckpt is not None:
        state = json.loads((ckpt / "state.json").read_text())
        start_step, start_elapsed = int(state["step"]), float(state.get("elapsed_s", 0.0))
    rng = np.random.default_rng(args.seed)
    keras().utils.set_random_seed(args.seed)
    arch = {"size": args.size, "base": args.base, "depth": args.depth, "growth": args.growth, "stem": args.stem,
            "dilations": DEFAULT_ARCH["dilations"], "n_dilated": DEFAULT_ARCH["n_dilated"]}
    if getattr(args, "norm", "batch") != "batch":  # the default stays out of the card, as before the option
        arch["norm"] = None if args.norm == "none" else args.norm
    if getattr(args, "widths", None):
        if len(args.widths) < 2 or min(args.widths) < 1:
            raise BCDIError(f"--widths {args.widths}: give at least 2 positive widths (levels and bottleneck)")
        arch.update(widths=[int(w) for w in args.widths], depth=len(args.widths) - 1, base=int(args.widths[0]))
        arch.pop("growth")
    model = build_model(arch, precision)
    if ckpt is None and getattr(args, "init", None):
        init = keras().saving.load_model(str(args.init), compile=False)
        try:
            model.set_weights(init.get_weights())
        except ValueError as err:
            raise BCDIError(f"--init {args.init}: its architecture differs from this run's ({err})") from None
        print(f"initialised from {args.init}", flush=True)
    cur = {"start_step": start_step, "curriculum_start": args.curriculum_start * PI,
           "curriculum_steps": args.curriculum_steps, "counts_log10": tuple(args.counts_log10)}
    threads = int(getattr(args, "data_threads", None) or 0)
    if threads > 0:
        batches = parallel_train_batches(train, args.batch, args.seed, threads=threads, **cur)
    else:
        batches = train_batches(train, args.batch, rng, **cur)
    val_b = validation_batches(val, args.batch)
    command = "bcdi-dl train phase " + " ".join(argv_of(args))
    backend = keras().backend.backend()
    config = {"command": command, "arch": arch, "n_train": len(train), "n_val": len(val), "loss": "WCA",
              "input": "core.reciprocal.log_normalise", "steps": steps, "backend": backend,
              "precision": precision, "time_budget_s": budget,
              "oversampling_range": [float(np.nanmin(train.oversampling)), float(np.nanmax(train.oversampling))]}
    max_seconds = budget
    if stop_by is not None:  # a hard wall-clock limit for fit, and the decay spread over the time left
        left = float(stop_by) - time.time()
        if left <= 0:
            raise BCDIError(f"--stop-by: the time is already past ({-left:.0f} s ago); give a later time")
        max_seconds = start_elapsed + left if budget is None else min(budget, start_elapsed + left)
        config["time_budget_s"] = max_seconds
    if timed:
        schedule = time_cosine_schedule(args.lr, max_seconds, warmup=args.warmup)
    else:
        schedule = cosine_schedule(args.lr, steps, warmup=args.warmup)

    def on_epoch(record: dict, m) -> None:
        if args.export and record.get("best"):
            meta = {"name": Path(args.export).stem, "kind": "phase", "grid": args.size, "arch": arch,
                    "input": "core.reciprocal.log_normalise(I) (log1p(I) / max) on the model grid",
                    "output": "reciprocal-space phase (radians, unbounded)",
                    "oversampling_range": config["oversampling_range"],
                    "phase_range_trained": [0.0, float(train.phase_range.max())],
                    "step": record["step"],
                    "held_out": {k: v for k, v in record.items() if k.startswith("val_")},
                    "n_train": len(train), "n_val": len(val), "backend": backend, "precision": precision,
                    "elapsed_s": record.get("elapsed_s"),
                    "trained": time.strftime("%Y-%m-%d %H:%M:%S"), "command": command,
                    **(getattr(args, "card_extra", None) or {})}
            export_model(m, args.export, meta)

    patience = getattr(args, "patience", None) or None
    try:
        return fit(model, wca_loss, batches, val_b, out, steps, steps_per_epoch=args.steps_per_epoch,
                   learning_rate=schedule, patience=patience, max_seconds=max_seconds, stop_at=stop_by,
                   checkpoint_every=getattr(args, "checkpoint_every", 50), resume=bool(args.resume), rng=rng,
                   metrics_fn=lambda m, vb: held_out_metrics(m, vb, val.phase_range),
                   on_epoch=on_epoch, config=config, progress=progress, cancel=cancel)
    finally:
        batches.close()  # stops the batch threads


def train_phase(args: argparse.Namespace) -> int:
    """``bcdi-dl train phase``: run the training, print where it stopped; exit status 0.

    ``args.cancel`` (set by ``cli/train.py`` on SIGTERM) stops it after a checkpoint.
    """
    res = run_training(args, cancel=getattr(args, "cancel", None))
    print(f"{args.out}: {res.stopped} at step {res.step}; best held-out WCA {res.best_val:.4f} at step "
          f"{res.best_step}", flush=True)
    return 0


def argv_of(args: argparse.Namespace, skip: Sequence[str] = ("func", "command", "model", "cancel", "quiet",
                                                                "card_extra", "stop_by")) -> list[str]:
    out = []
    for k, v in vars(args).items():
        if k in skip or v is None or v is False:
            continue
        flag = "--" + k.replace("_", "-")
        if v is True:
            out.append(flag)
        elif isinstance(v, (list, tuple)):
            out += [flag] + [str(x) for x in v]
        else:
            out += [flag, str(v)]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m napari_bcdi_dl.models.phase_training`` (the same as ``bcdi-dl train phase``)."""
    parser = add_phase_arguments(argparse.ArgumentParser(prog="bcdi-dl train phase"))
    return train_phase(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
