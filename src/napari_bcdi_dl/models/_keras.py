"""The one door to Keras (and TensorFlow): every model module gets Keras through :func:`keras`.

Why a door
----------
* Importing TensorFlow costs 4–7 s; napari, the reader and the sample data must never pay it.
* TensorFlow ≥ 2.20 loads its core library with ``RTLD_GLOBAL`` and exports thousands of LLVM symbols
  that clash with Mesa's libLLVM: TensorFlow and a napari/vispy GL canvas in one process crash with
  SIGSEGV, in either order (tensorflow#124205, #109933). Before TensorFlow is first imported we
  (1) block ``tensorflow.python.pywrap_dlopen_global_flags`` so TensorFlow keeps its libraries local and
  (2) import it with ``RTLD_NOW | RTLD_DEEPBIND`` so its libraries bind to their own LLVM first,
  then restore the interpreter's dlopen flags. Measured safe in every order (see
  ``tests/gui/test_tf_and_gl.py``).

The backend is Keras's own choice (``KERAS_BACKEND``, default ``tensorflow``); with ``torch`` or ``jax``
TensorFlow is never imported.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from types import ModuleType

_lock = threading.Lock()


def backend_name() -> str:
    """The Keras backend that :func:`keras` will load (without importing anything)."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def _import_tensorflow_guarded() -> None:
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow enables its oneDNN kernels by default only on CPUs with AVX-512 VNNI/BF16/AMX; on AVX2
    # CPUs (most laptops, this project's CI) the 3D convolutions are then ~3x slower (measured: 52 vs
    # 17.5 ms per 32³ inpainting window, benchmarks/bench_inpaint.py). Opt in unless the user chose.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    sys.modules.setdefault("tensorflow.python.pywrap_dlopen_global_flags", None)  # type: ignore[arg-type]
    flags = sys.getdlopenflags()
    sys.setdlopenflags(os.RTLD_NOW | getattr(os, "RTLD_DEEPBIND", 0))
    try:
        with _quiet_import_banner():
            import tensorflow  # noqa: F401
    finally:
        sys.setdlopenflags(flags)


#: Lines TensorFlow's C++ side writes to fd 2 at import whatever TF_CPP_MIN_LOG_LEVEL says.
_BANNER = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on")


@contextlib.contextmanager
def _quiet_import_banner():
    """Capture fd 2 around the import and pass on every line except TensorFlow's import banner."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): import as is
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().decode(errors="replace").splitlines(keepends=True)
                    if not any(b in ln for b in _BANNER)]
            if kept:
                sys.stderr.write("".join(kept))


def keras() -> ModuleType:
    """Return the ``keras`` module, importing it (and TensorFlow, guarded) on first use."""
    with _lock:
        if "keras" not in sys.modules and backend_name() == "tensorflow":
            _import_tensorflow_guarded()
        import keras as _k

        return _k


def ops() -> ModuleType:
    """Shortcut for ``keras().ops``."""
    return keras().ops
