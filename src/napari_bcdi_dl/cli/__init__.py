"""``bcdi-dl``: the headless pipeline.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` (called with the parsed arguments, returns an exit status or None). Modules
are found by name, so adding a command is adding a file.

Errors: a :class:`~napari_bcdi_dl.core.errors.BCDIError` (and missing files, unreadable files) print one
line on stderr, ``bcdi-dl <command>: error: <message>``, and exit with status 2. Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from typing import Optional

from .. import __version__
from ..core.errors import BCDIError, Cancelled


def _command_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="bcdi-dl",
        description="BCDI scans to 3D strain maps, with deep learning for detector gaps and high strain.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _command_modules():
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bcdi-dl`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"bcdi-dl {args.command}"
    try:
        status = args.func(args)
    except BCDIError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"{prog}: error: no such file: {err.filename or err}", file=sys.stderr)
        return 2
    except IsADirectoryError as err:
        print(f"{prog}: error: {err.filename or err} is a folder, a file was expected", file=sys.stderr)
        return 2
    except PermissionError as err:
        print(f"{prog}: error: permission denied: {err.filename or err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Cancelled):
        print(f"{prog}: cancelled", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
