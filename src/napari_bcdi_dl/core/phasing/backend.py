"""Array backend of the phasing engine: numpy + scipy.fft on the CPU, CuPy on a GPU.

The engine is written once against an ``xp`` module (numpy or cupy) and a :class:`Backend` that adds what
the array modules do not share: in-place FFTs, a Gaussian filter, and transfers to and from the host.

Selection (``backend="auto"``, the default): CuPy when it imports AND reports at least one CUDA device,
numpy otherwise. ``"numpy"`` or ``"cupy"`` force one (forcing CuPy where it cannot run is a
:class:`~napari_bcdi_dl.core.errors.BCDIError`). The environment variable ``BCDI_DL_BACKEND`` sets the
default for ``"auto"``. CuPy is never imported unless the selection asks for it.

Performance notes (numpy): FFTs are ``scipy.fft`` with ``workers=-1`` (one worker below 64³ voxels) and ``overwrite_x=True`` on
complex64 arrays, which pocketfft performs in place (no array-sized temporary). Everything elementwise
uses ufuncs with ``out=``; ``where=`` ufuncs are avoided (several times slower than plain ones in numpy,
and absent from CuPy).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import BCDIError

BACKENDS = ("auto", "numpy", "cupy")
#: arrays smaller than this are transformed on one thread (thread start-up costs more than it saves)
THREADED_FFT_MIN_SIZE = 1 << 18
ENV_VAR = "BCDI_DL_BACKEND"


@functools.lru_cache(maxsize=1)
def cupy_usable() -> bool:
    """True when CuPy imports and sees at least one CUDA device (checked once per process)."""
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except Exception:  # noqa: BLE001 - ImportError, CUDARuntimeError, missing driver...
        return False


def select_backend_name(requested: str | None = "auto", cupy_available: bool | None = None) -> str:
    """Resolve a backend request to ``"numpy"`` or ``"cupy"``.

    Parameters
    ----------
    requested : ``"auto"`` (or None), ``"numpy"`` or ``"cupy"``. ``"auto"`` reads ``BCDI_DL_BACKEND`` first.
    cupy_available : whether CuPy can run here; None asks :func:`cupy_usable`.

    Raises
    ------
    BCDIError : unknown name, or ``"cupy"`` requested where CuPy cannot run.
    """
    name = (requested or "auto").strip().lower()
    if name == "auto":
        name = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
        if name not in BACKENDS:
            raise BCDIError(f"{ENV_VAR}={name!r} is not a phasing backend: use one of {', '.join(BACKENDS)}")
    if name not in BACKENDS:
        raise BCDIError(f"unknown phasing backend {requested!r}: use one of {', '.join(BACKENDS)}")
    if cupy_available is None:
        cupy_available = cupy_usable() if name in ("auto", "cupy") else False
    if name == "auto":
        return "cupy" if cupy_available else "numpy"
    if name == "cupy" and not cupy_available:
        raise BCDIError(
            "phasing backend 'cupy' requested but CuPy is not installed or sees no GPU: "
            "install cupy-cuda12x on a GPU machine or use backend 'numpy'"
        )
    return name


def _workers(a: Any) -> int:
    """scipy.fft workers: the engine's threads (``_fused.n_threads``: the cores, or ``BCDI_DL_THREADS``) for
    large arrays, 1 for small ones."""
    from ._fused import n_threads

    return n_threads() if a.size >= THREADED_FFT_MIN_SIZE else 1


@dataclass(frozen=True)
class Backend:
    """An array module plus the few operations that differ between numpy and CuPy.

    Attributes
    ----------
    name : ``"numpy"`` or ``"cupy"``.
    xp : the array module.
    """

    name: str
    xp: ModuleType
    _fft: Any
    _ndimage: Any

    # -- transfers -------------------------------------------------------------------------------------
    def asarray(self, a: Any, dtype: Any = None) -> Any:
        """Move/convert ``a`` to this backend (no copy when it already is one of the right dtype)."""
        return self.xp.asarray(a, dtype=dtype)

    def to_numpy(self, a: Any) -> np.ndarray:
        """Return ``a`` as a numpy array on the host."""
        if self.name == "cupy":
            return a.get()
        return np.asarray(a)

    def scalar(self, a: Any) -> float:
        """A 0-d backend array (or number) as a Python float (synchronises a GPU)."""
        return float(a)

    # -- FFTs: unnormalised forward, 1/N backward, in place when possible ------------------------------
    def fftn_(self, a: Any) -> Any:
        """Forward FFT of a complex64 array, in place where the library allows; returns the result."""
        if self.name == "numpy":
            return self._fft.fftn(a, overwrite_x=True, workers=_workers(a))
        return self._fft.fftn(a, overwrite_x=True)

    def ifftn_(self, a: Any) -> Any:
        """Backward FFT (scaled by 1/N) of a complex64 array, in place where possible."""
        if self.name == "numpy":
            return self._fft.ifftn(a, overwrite_x=True, workers=_workers(a))
        return self._fft.ifftn(a, overwrite_x=True)

    def rfftn(self, a: Any) -> Any:
        """Real-to-complex forward FFT (for autocorrelations and smoothing)."""
        if self.name == "numpy":
            return self._fft.rfftn(a, workers=-1)
        return self._fft.rfftn(a)

    def irfftn(self, a: Any, shape: tuple) -> Any:
        """Complex-to-real backward FFT returning ``shape``."""
        axes = tuple(range(len(shape)))  # NumPy 2 deprecates s without axes; CuPy follows NumPy
        if self.name == "numpy":
            return self._fft.irfftn(a, s=shape, axes=axes, workers=-1)
        return self._fft.irfftn(a, s=shape, axes=axes)

    # -- filters ---------------------------------------------------------------------------------------
    def gaussian_filter(self, a: Any, sigma: float, output: Any = None) -> Any:
        """Periodic (``mode="wrap"``) Gaussian filter: right for FFT-native (corner-origin) arrays."""
        if sigma <= 0:
            if output is None:
                return a.copy()
            output[...] = a
            return output
        return self._ndimage.gaussian_filter(a, sigma, mode="wrap", output=output, truncate=3.0)


@functools.cache
def _make_backend(name: str) -> Backend:
    if name == "cupy":
        import cupy
        import cupyx.scipy.fft as cufft
        import cupyx.scipy.ndimage as cundi

        return Backend("cupy", cupy, cufft, cundi)
    import scipy.fft as sfft
    import scipy.ndimage as ndi

    return Backend("numpy", np, sfft, ndi)


def get_backend(name: str | None = "auto") -> Backend:
    """The :class:`Backend` for ``name`` (``"auto"``, ``"numpy"`` or ``"cupy"``); see the module notes."""
    if isinstance(name, Backend):
        return name
    return _make_backend(select_backend_name(name))
