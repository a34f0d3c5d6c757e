"""Atomic file output: write to a temporary file beside the target, then rename over it.

A reader never sees a half-written file, a crash leaves the old file intact, and an input file is never
overwritten (pass ``protect=`` the input paths).

Permissions: ``tempfile.mkstemp`` creates its file readable by the owner only (0600); before the rename the
file gets the mode a plain ``open(path, "w")`` would have given it, ``0o666 & ~umask``, so outputs in a
shared beamline folder are readable by the group as the user's umask says.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
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


_UMASK_LOCK = threading.Lock()
_UMASK_LINE = re.compile(r"^Umask:\s*([0-7]+)\s*$", re.MULTILINE)


def current_umask() -> int:
    """The process's umask, read without changing it where possible.

    Linux reports it in ``/proc/self/status`` (``Umask:``, kernel >= 4.7); elsewhere it is read by setting
    and restoring it (``os.umask`` is process-global, so that is done under a lock and only as a fallback).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            m = _UMASK_LINE.search(fh.read())
        if m:
            return int(m.group(1), 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        old = os.umask(0o022)
        os.umask(old)
    return old


def output_mode(umask: int | None = None) -> int:
    """Mode of a new regular output file: ``0o666 & ~umask`` (0644 with the usual umask 022)."""
    return 0o666 & ~(current_umask() if umask is None else int(umask))


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
        if tmp_path.exists():  # the writer may have replaced it: set the mode on what will be renamed
            os.chmod(tmp_path, output_mode())
        os.replace(tmp_path, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
