"""``bcdi-dl train {inpaint,phase} ...``: train the models on simulated shards, resumable.

``inpaint`` is implemented here (:func:`napari_bcdi_dl.models.inpaint_training.train_inpaint`);
``phase`` dispatches to ``napari_bcdi_dl.models.phase_training.train_phase(args)``, imported lazily,
which receives the parsed arguments of its own sub-parser (see :func:`_register_phase`).

A training run is a long background job: it checkpoints every ``--checkpoint-every`` steps and at every
epoch end (weights, optimizer, step, RNG), and ``--resume`` continues from the last checkpoint of
``--out``. SIGTERM and Ctrl-C write a checkpoint before exiting (exit status 130).

Example (the shipped inpainting model, docs/models.md)::

    nohup nice -n 5 bcdi-dl train inpaint --data runs/data/train64_s11 runs/data/train128_s12 \\
        --val runs/data/val64_s901 runs/data/val128_s902 --out runs/inpaint --resume \\
        --export src/napari_bcdi_dl/models/weights/inpaint_unet32.keras > runs/inpaint/train.log 2>&1 &
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import signal
import sys
import threading

from ..core.errors import BCDIError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model on simulated shards (inpaint | phase | defects), resumable from checkpoints",
        description="Train a model on simulated shards ('bcdi-dl dataset'). Checkpoints often; --resume "
                    "continues the run in --out.",
    )
    sub = p.add_subparsers(dest="model", metavar="MODEL")
    sub.required = True
    _register_inpaint(sub)
    _register_phase(sub)
    _register_defects(sub)


def _common(q: argparse.ArgumentParser) -> None:
    q.add_argument("--data", nargs="+", required=True, metavar="DIR", help="training dataset folder(s)")
    q.add_argument("--val", nargs="+", required=True, metavar="DIR",
                   help="held-out dataset folder(s), made with other seeds")
    q.add_argument("--out", required=True, help="run folder: checkpoints, log.json, best.keras")
    q.add_argument("--epochs", type=int, default=None, help="epochs of --steps-per-epoch steps (sets --steps)")
    q.add_argument("--steps", type=int, default=None, help="total optimizer steps (default 20000)")
    q.add_argument("--steps-per-epoch", type=int, default=250, help="steps between validations (default 250)")
    q.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    q.add_argument("--lr", type=float, default=1e-3, help="peak learning rate, cosine decay (default 1e-3)")
    q.add_argument("--patience", type=int, default=12,
                   help="early stop after that many epochs without a better held-out loss (0: never)")
    q.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints (default 50)")
    q.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    q.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    q.add_argument("--export", default=None, metavar="FILE.keras",
                   help="save the model there (with a .json card) whenever it improves and beats linear "
                        "interpolation on the held-out set")
    q.add_argument("--val-limit", type=int, default=None, help="use at most that many held-out samples")
    q.add_argument("--quiet", action="store_true", help="no progress bar")


def _register_inpaint(sub) -> None:
    q = sub.add_parser("inpaint", help="the detector-gap inpainting U-Net (32³ windows)",
                       description="Train the inpainting U-Net on 'bcdi-dl dataset inpaint' shards with "
                                   "symmetry, noise-level and gap augmentations.")
    _common(q)
    q.add_argument("--train-limit", type=int, default=None, help="use at most that many training samples")
    q.add_argument("--widths", type=int, nargs="+", default=None, help="U-Net channels per level")
    q.add_argument("--init", default=None, metavar="FILE.keras",
                   help="start from these weights (e.g. the shipped model) instead of a fresh U-Net")
    q.add_argument("--blur", type=float, default=0.0, metavar="SIGMA",
                   help="partial-coherence augmentation: blur half of the samples with a Gaussian of "
                        "per-axis width U(0, SIGMA) voxels (default 0: off)")
    q.add_argument("--linear-weight", type=float, default=0.0, metavar="POWER",
                   help="weight each training sample's loss by (gap L1 of its linear pre-fill)^-POWER, "
                        "batch mean 1, so narrow gaps count as much as wide ones (default 0: off)")
    q.add_argument("--bright-weight", type=float, default=0.0, metavar="W",
                   help="add W × an L1 weighted by the target's brightness, so the bright voxels beside the "
                        "peak, which hold most of a gap's photons, count (default 0: off)")
    q.add_argument("--amplitude-weight", type=float, default=0.0, metavar="W",
                   help="add W × the squared error of the amplitude sqrt(I) in the gap relative to the "
                        "window's, what a reconstruction sees: a fill too bright beside the peak costs as "
                        "much as a dark one (default 0: off)")
    q.add_argument("--norm", choices=("group", "batch", "none"), default=None,
                   help="normalisation after each convolution (default group)")
    q.add_argument("--context", action="store_true",
                   help="train the context model: a second input with a coarse view of the 64³ surroundings "
                        "(sets made by this version, which store it; --init without context gets one)")
    q.set_defaults(func=run_inpaint)


def _register_phase(sub) -> None:
    q = sub.add_parser("phase", help="the reciprocal-space phase U-Net (64³ patterns)",
                       description="Train the phase U-Net (napari_bcdi_dl.models.phase_training).")
    _common(q)
    setup = _phase_module_attr("add_arguments")
    if setup is not None:  # the phase module may add its own options
        setup(q)
    q.set_defaults(func=run_phase)


def _register_defects(sub) -> None:
    q = sub.add_parser("defects", help="the dislocation classifier (64³ patterns -> none/edge/screw/mixed)",
                       description="Train the defect classifier (napari_bcdi_dl.models.defects) on "
                                   "'bcdi-dl dataset defects' shards; see docs/defects.md.")
    _common(q)
    q.add_argument("--train-limit", type=int, default=None, help="use at most that many training samples")
    q.add_argument("--widths", type=int, nargs="+", default=None,
                   help="channels of the 4 strided levels (default 8 16 32 64)")
    q.add_argument("--max-seconds", type=float, default=None,
                   help="stop after that much training time (a last validation and export first)")
    q.add_argument("--init", default=None, metavar="FILE.keras",
                   help="continue from these weights (a defects classifier, e.g. the shipped "
                        "defects_cnn.keras) instead of a fresh network; --widths is then theirs")
    q.add_argument("--keep-g-axis", default=None, metavar="AXIS",
                   help="z, y or x: the sets have G along that array axis ('bcdi-dl dataset defects "
                        "--g-axis'); the patterns are turned so that it is axis 0 and augmented only with "
                        "the flips and the axis swap that keep G there (the G-aware model defects_gz)")
    q.set_defaults(func=run_defects)


def run_defects(args: argparse.Namespace) -> int | None:
    from ..models.defects_training import train_defects
    from ._progress import progress_bar

    steps = _steps(args) if (args.epochs is not None or args.steps is not None) else 3000
    if args.widths is not None and len(args.widths) != 4:
        raise BCDIError("--widths needs 4 numbers (channels of the strided levels)")
    if args.widths is not None and args.init is not None:
        raise BCDIError("--widths and --init: the widths of --init's network are used; give one of them")
    from ..models.defects import check_g_axis

    keep = check_g_axis(args.keep_g_axis, "--keep-g-axis")
    command = "bcdi-dl " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with _StopOnSignal() as stop, progress_bar("train defects", disable=True if args.quiet else None) as bar:
        result = train_defects(
            args.data, args.val, args.out, steps=steps, batch=args.batch, steps_per_epoch=args.steps_per_epoch,
            lr=args.lr, patience=args.patience or None, checkpoint_every=args.checkpoint_every,
            resume=args.resume, seed=args.seed, train_limit=args.train_limit, val_limit=args.val_limit,
            widths=tuple(args.widths or (8, 16, 32, 64)), export=args.export, max_seconds=args.max_seconds,
            command=command, init=args.init, keep_g_axis=keep, progress=bar, cancel=stop,
        )
    print(f"{args.out}: {result.stopped} at step {result.step}; best held-out loss {result.best_val:.5g} "
          f"at step {result.best_step}")
    return 0


def _phase_module_attr(name: str):
    try:
        mod = importlib.import_module("napari_bcdi_dl.models.phase_training")
    except ImportError:
        return None
    return getattr(mod, name, None)


def _steps(args: argparse.Namespace) -> int:
    if args.epochs is not None and args.steps is not None:
        raise BCDIError("give --epochs or --steps, not both")
    if args.epochs is not None:
        return int(args.epochs) * int(args.steps_per_epoch)
    return int(args.steps or 20000)


class _StopOnSignal:
    """Turn SIGTERM into a cancel request (the fit loop then checkpoints and stops)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._old = None

    def __enter__(self) -> threading.Event:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, lambda *_: self.event.set())
        return self.event

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def run_inpaint(args: argparse.Namespace) -> int | None:
    from ..models.inpaint_training import train_inpaint
    from ._progress import progress_bar

    steps = _steps(args)
    arch = {}
    if args.widths:
        if len(args.widths) != 4:
            raise BCDIError("--widths needs 4 numbers (channels per U-Net level, full resolution first)")
        arch["widths"] = tuple(args.widths)
    if args.norm:
        arch["norm"] = None if args.norm == "none" else args.norm
    command = "bcdi-dl " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with _StopOnSignal() as stop, progress_bar("train inpaint",
                                               disable=True if args.quiet else None) as bar:
        result = train_inpaint(
            args.data, args.val, args.out, steps=steps, batch=args.batch,
            steps_per_epoch=args.steps_per_epoch, lr=args.lr, patience=args.patience or None,
            checkpoint_every=args.checkpoint_every, resume=args.resume, seed=args.seed,
            val_limit=args.val_limit, train_limit=args.train_limit, export=args.export, arch=arch or None,
            init=args.init, blur=args.blur, linear_weight=args.linear_weight,
            bright_weight=args.bright_weight, amplitude_weight=args.amplitude_weight, context=args.context,
            command=command, progress=bar, cancel=stop,
        )
    print(f"{args.out}: {result.stopped} at step {result.step}; best held-out loss {result.best_val:.5g} "
          f"at step {result.best_step}")
    return 0


def run_phase(args: argparse.Namespace) -> int | None:
    train_phase = _phase_module_attr("train_phase")
    if train_phase is None:
        raise BCDIError("the phase model's training is not available in this version "
                        "(napari_bcdi_dl.models.phase_training.train_phase is missing)")
    with _StopOnSignal() as stop:
        args.cancel = stop
        return train_phase(args)
