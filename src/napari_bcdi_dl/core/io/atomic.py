"""Atomic file output: write to a temporary file beside the target, then rename over it.

A reader never sees a half-written file, a crash leaves the old file intact, and an input file is never
overwritten (pass ``protect=`` the input paths).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import BCDIError


def check_output_path(path: os.PathLike | str, protect: Iterable[os.PathLike | str] | None = None) -> Path:
    """Validate an output path: its folder exists and it is not one of the ``protect`` (input) paths."""
    out = Path(path)
    if not out.parent.exists():
        raise BCDIError(f"output folder {out.parent} does not exist: create it or choose another --out")
    if out.is_dir():
        raise BCDIError(f"output {out} is a folder: give a file name")
    for p in protect or ():
        p = Path(p)
        if out.exists() and p.exists() and os.path.samefile(out, p):
            raise BCDIError(f"output {out} is the input file: choose another output name")
    return out


@contextlib.contextmanager
def atomic_path(path: os.PathLike | str, protect: Iterable[os.PathLike | str] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it.

    Examples
    --------
    >>> with atomic_path("out.npz") as tmp:          # doctest: +SKIP
    ...     np.savez(tmp, data=a)
    """
    out = check_output_path(path, protect)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part" + out.suffix, dir=out.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
