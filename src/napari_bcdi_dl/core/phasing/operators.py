"""ER, HIO and RAAR on FFT-native arrays, with preallocated buffers and in-place FFTs.

Conventions: the user's arrays are centred (object in the middle, q = 0 in the middle of the pattern);
:func:`prepare_data` ``ifftshift`` s them once, the iterations run in FFT-native (corner-origin) order,
and :meth:`Engine.obj_centred` shifts back. ``I = |fftn(obj)|²`` with the unnormalised forward FFT, so the
object's scale is that of the data.

One iteration (``P_M`` the modulus projection, ``s`` the support, ``x`` the current object)::

    P_M x = ifftn( r · fftn(x) ),  r = sqrt(I_obs) / |fftn(x)| on observed voxels, r = 1 on masked
                                   (gap) and free voxels: their calculated amplitude is kept
    ER   : x ← s · P_M x
    HIO  : x ← s · P_M x + (1 - s) · (x - β P_M x)
    RAAR : x ← s · P_M x + (1 - s) · ((1 - 2β) P_M x + β x)

All three are ``x ← c_pm · P_M x + c_prev · x`` with two real coefficients that take one value inside the
support and one outside (``c_prev = 0`` for ER). On numpy the modulus projection and this update are each
one fused, threaded pass over memory (:mod:`._fused`: compiled loops, or blocked ufuncs where the package
was built without a C compiler); on CuPy they are plain array operations on coefficient arrays. With
positivity, "inside" means ``s`` and ``Re(P_M x) > 0`` (PyNX), on a slower path that allocates temporaries.

Memory of an :class:`Engine` on numpy: the object and the previous iterate (complex64, HIO/RAAR only), the
data amplitude, a modulus buffer and a scratch array (float32), the support (bool), flat indices of the
masked and free voxels, and either a byte per voxel flagging them (compiled loops) or the two coefficient
arrays (float32, blocked ufuncs and CuPy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import BCDIError
from . import _fused
from .backend import Backend, get_backend
from .likelihood import ZERO_COUNT, LLKEvaluator, free_mask
from .support import update_support_native

#: Added to the calculated modulus in the modulus projection (avoids 0/0; a no-op in float32 above 1e-12).
MODULUS_FLOOR = np.float32(1e-20)
MIN_SIZE = 8


def check_intensity(
    intensity: Any, mask: Any = None, *, where: str = "intensity"
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Validate a centred 3D intensity and its mask; return (float32 copy, bool mask or None, n_negative).

    Negative intensities (background subtraction) are set to 0 and counted. Raises a one-line
    :class:`BCDIError` on wrong dimensions, complex or non-numeric data, NaN/inf values, a mask of
    another shape, a mask covering everything, or data that are zero everywhere outside the mask.
    """
    a = np.asarray(intensity)
    if a.ndim != 3:
        raise BCDIError(
            f"{where} must be a 3D array (z, y, x), got {a.ndim}D with shape {a.shape}: "
            "pass the full stack of detector frames"
        )
    if min(a.shape) < MIN_SIZE:
        raise BCDIError(f"{where} shape {a.shape} is too small: each axis needs at least {MIN_SIZE} voxels")
    if np.iscomplexobj(a):
        raise BCDIError(f"{where} is complex: pass the measured intensity (real counts), not an object")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise BCDIError(f"{where} has dtype {a.dtype}, not numbers: pass photon counts")
    data = np.array(a, dtype=np.float32)  # a copy: the input is never modified
    m = None
    if mask is not None:
        mk = np.asarray(mask)
        if mk.shape != data.shape:
            raise BCDIError(
                f"mask shape {mk.shape} differs from {where} shape {data.shape}: give a mask of the same shape"
            )
        m = mk != 0
        if m.all():
            raise BCDIError(
                f"the mask covers every voxel of the {'x'.join(map(str, data.shape))} {where}: "
                "nothing is left to phase, check the mask (1 = invalid voxel)"
            )
    bad = ~np.isfinite(data)
    if m is not None:
        bad &= ~m
    n_bad = int(bad.sum())
    if n_bad:
        raise BCDIError(
            f"{where} contains {n_bad} NaN or infinite voxels outside the mask: "
            "mask them (1 in the mask) or replace them with 0"
        )
    if m is not None:
        data[m] = 0
    neg = data < 0
    n_neg = int(neg.sum())
    if n_neg:
        data[neg] = 0
    if not np.any(data > 0):
        where_txt = "outside the mask" if m is not None else "everywhere"
        raise BCDIError(f"{where} is zero {where_txt}: there is no signal to phase")
    return data, m, n_neg


@dataclass
class PreparedData:
    """The data of a phasing job in FFT-native order on a backend (shared by all runs).

    Attributes
    ----------
    be : the backend.
    shape : array shape.
    amp : sqrt(observed intensity), float32, 0 on masked and free voxels.
    masked_idx, free_idx, fixed_idx : flat indices of masked voxels, free voxels, and both (sorted).
    free_native : bool array of the free voxels (FFT-native, host numpy) — for inspection and tests.
    llk : the LLK evaluator.
    meta : counts (masked, free, negative intensities clipped).
    """

    be: Backend
    shape: tuple
    amp: Any
    masked_idx: Any
    free_idx: Any
    fixed_idx: Any
    llk: LLKEvaluator
    meta: dict = field(default_factory=dict)

    @property
    def n_observed(self) -> int:
        """Observed voxels that are not free (the ones the projection fits)."""
        return int(self.amp.size - self.fixed_idx.size)

    def intensity_native(self) -> Any:
        """Observed intensity with zeros on masked and free voxels (a new float32 array)."""
        return self.amp * self.amp

    def free_centred(self) -> np.ndarray:
        """The free voxels as a centred uint8 array."""
        f = np.zeros(int(np.prod(self.shape)), dtype=np.uint8)
        f[self.be.to_numpy(self.free_idx)] = 1
        return np.fft.fftshift(f.reshape(self.shape))


def prepare_data(
    intensity: Any,
    mask: Any = None,
    *,
    free_fraction: float = 0.05,
    seed: int = 0,
    backend: Any = "auto",
    where: str = "intensity",
) -> PreparedData:
    """Validate centred data and mask, draw the free voxels, and move everything to FFT-native order.

    Parameters
    ----------
    intensity : centred intensity (z, y, x).
    mask : centred mask, 1 = invalid (gap) voxel, or None.
    free_fraction : fraction of observed voxels kept free for the free LLK (0 disables).
    seed : seed of the free-voxel draw (same seed, same free voxels).
    backend : ``"auto"``, ``"numpy"``, ``"cupy"`` or a :class:`Backend`.
    """
    data, m, n_neg = check_intensity(intensity, mask, where=where)
    be = get_backend(backend)
    free = free_mask(data.shape, m, ratio=free_fraction, seed=seed).astype(bool)
    if free.any() and m is not None:
        free &= ~m
    # keep at least some observed voxels with signal outside the free set
    if free.any() and not np.any(data[~free] > 0):
        free[:] = False
    shape = data.shape
    native = np.fft.ifftshift(data)
    del data
    masked_n = np.flatnonzero(np.fft.ifftshift(m)) if m is not None else np.zeros(0, dtype=np.intp)
    free_n = np.flatnonzero(np.fft.ifftshift(free))
    del free
    free_obs = native.ravel()[free_n].copy()
    flat = native.ravel()
    flat[masked_n] = 0
    flat[free_n] = 0
    low = np.flatnonzero((flat > 0) & (flat <= ZERO_COUNT))
    np.sqrt(native, out=native)
    amp = be.asarray(native, dtype=np.float32)
    del native, flat
    masked_idx = be.asarray(masked_n)
    free_idx = be.asarray(free_n)
    fixed_idx = be.asarray(np.union1d(masked_n, free_n))
    ev = LLKEvaluator(be, amp, masked_idx, free_idx, be.asarray(free_obs), be.asarray(low))
    meta = {
        "n_masked": int(masked_n.size),
        "n_free": int(free_n.size),
        "n_negative_clipped": n_neg,
        "free_fraction": float(free_fraction),
        "free_seed": int(seed),
        "backend": be.name,
    }
    return PreparedData(be, shape, amp, masked_idx, free_idx, fixed_idx, ev, meta)


def circular_centre(weights: np.ndarray) -> tuple[float, ...]:
    """Centre of mass of a non-negative array on a periodic grid (robust to wrap-around), per axis."""
    w = np.asarray(weights, dtype=np.float64)
    out = []
    for axis in range(w.ndim):
        p = w.sum(axis=tuple(i for i in range(w.ndim) if i != axis))
        n = p.size
        z = (p * np.exp(2j * np.pi * np.arange(n) / n)).sum()
        out.append(float((np.angle(z) * n / (2 * np.pi)) % n) if abs(z) > 0 else 0.0)
    return tuple(out)


class Engine:
    """One reconstruction in progress: object, support and the buffers of the iterations.

    Parameters
    ----------
    data : prepared data (shared, never modified).
    obj : initial object, FFT-native, complex64 (backend array; taken over, not copied).
    support : initial support, FFT-native, bool (backend array).
    positivity : apply positivity inside the support.
    """

    def __init__(self, data: PreparedData, obj: Any, support: Any, *, positivity: bool = False) -> None:
        self.data = data
        self.be = data.be
        xp = self.be.xp
        if obj.dtype != np.complex64:
            obj = obj.astype(np.complex64)
        self.obj = obj
        self.support = support.astype(bool, copy=False)
        self.n_support = int(self.be.scalar(self.support.sum()))
        self.positivity = bool(positivity)
        self.a = xp.empty(data.shape, dtype=np.float32)  # modulus / ratio buffer
        self._c_pm = None
        self._c_prev = None
        self._coeff_key: tuple | None = None
        self._c_fused: tuple = (None, None)  # _fused.Coefficient of (c_pm, c_prev), numpy backend
        self.prev = None
        # the coefficient key for which ``prev`` already holds c_prev · obj (set by a fused HIO/RAAR step,
        # cleared by anything else that changes the object or the support)
        self._prev_ready: tuple | None = None
        self.border_reference = None
        self.centring_shift = (0, 0, 0)
        # numpy: fused, cache-blocked, threaded element-wise steps (see _fused)
        self._plan = (
            _fused.BlockPlan(int(np.prod(data.shape)), np.asarray(data.fixed_idx))
            if self.be.name == "numpy"
            else None
        )

    # -- support ---------------------------------------------------------------------------------------
    def set_support(self, support: Any) -> None:
        """Replace the support (bool, FFT-native)."""
        self.support = support.astype(bool, copy=False)
        self.n_support = int(self.be.scalar(self.support.sum()))
        self._coeff_key = None
        self._prev_ready = None

    def update_support(self, *, border_only: bool = False, **kw: Any) -> None:
        """Shrink-wrap (or border-only) update; keyword arguments of ``update_support_native``.

        Border-only updates are relative to the support when the first of them happened (kept until a
        plain update), so the shape never drifts.
        """
        if border_only:
            if self.border_reference is None:
                self.border_reference = self.support.copy()
        else:
            self.border_reference = None
        new = update_support_native(
            self.be,
            self.obj,
            self.support,
            scratch=self.data.llk._buf(),
            work=self.a,
            border_only=border_only,
            reference=self.border_reference,
            **kw,
        )
        self.set_support(new)

    def _coefficients(self, algo: str, beta: float) -> tuple[Any, Any]:
        """The real coefficient arrays (c_pm, c_prev) of ``x ← c_pm · P_M x + c_prev · x`` (c_prev None for
        ER); on numpy also their :class:`_fused.Coefficient` descriptions (``self._c_fused``)."""
        key = (algo, float(beta))
        if self._coeff_key != key:
            xp = self.be.xp
            f32 = np.float32
            if algo == "ER":  # (inside, outside) of c_pm and c_prev, in the float32 arithmetic of the arrays
                values = ((f32(1), f32(0)), None)
            elif algo == "HIO":  # c_pm = s - β(1 - s); c_prev = 1 - s
                values = ((f32(1), f32(-beta)), (f32(0), f32(1)))
            else:  # RAAR: c_pm = 1 - 2β(1 - s); c_prev = β(1 - s)
                values = ((f32(1), f32(f32(-2.0 * beta) + f32(1))), (f32(0), f32(beta)))
            plan = self._plan
            if plan is not None and plan.compiled:  # the compiled loops read the support and two values
                s = xp.ascontiguousarray(self.support).reshape(-1).view(np.uint8)
                self._c_fused = tuple(
                    None if v is None else _fused.Coefficient(v[0], v[1], s, None, None) for v in values
                )
                self._coeff_key = key
                return None, None
            if self._c_pm is None:
                self._c_pm = xp.empty(self.data.shape, dtype=np.float32)
            s = self.support
            c = self._c_pm
            if algo == "ER":
                c[...] = s
            else:
                if self._c_prev is None:
                    self._c_prev = xp.empty(self.data.shape, dtype=np.float32)
                p = self._c_prev
                p[...] = s
                xp.subtract(1, p, out=p)  # 1 - s
                if algo == "HIO":
                    xp.multiply(p, -beta, out=c)
                    c += s
                else:
                    xp.multiply(p, -2.0 * beta, out=c)
                    c += 1
                    p *= beta
            if plan is not None:
                self._c_fused = tuple(
                    None if a is None else _fused.Coefficient(v[0], v[1], None, a, _fused.block_constants(plan, a))
                    for a, v in ((c, values[0]), (None if algo == "ER" else self._c_prev, values[1]))
                )
            self._coeff_key = key
        return self._c_pm, self._c_prev

    # -- the Fourier side ------------------------------------------------------------------------------
    def _modulus_projection(self, want_llk: bool) -> tuple[float, float | None] | None:
        """obj ← P_M obj (in place); returns (llk, llk_free) of the incoming object if asked."""
        xp, be, d = self.be.xp, self.be, self.data
        psi = be.fftn_(self.obj)
        if self._plan is not None and not want_llk:
            _fused.modulus_step(self._plan, psi, d.amp, MODULUS_FLOOR)
            self.obj = be.ifftn_(psi)
            return None
        a = self.a
        xp.abs(psi, out=a)
        res = d.llk.evaluate(a, self.n_support) if want_llk else None
        xp.add(a, MODULUS_FLOOR, out=a)
        xp.divide(d.amp, a, out=a)
        if d.fixed_idx.size:
            a.ravel()[d.fixed_idx] = 1  # masked and free voxels: calculated amplitude kept
        xp.multiply(psi, a, out=psi)
        self.obj = be.ifftn_(psi)
        return res

    def iterate(
        self, algo: str, beta: float = 0.9, want_llk: bool = False
    ) -> tuple[float, float | None] | None:
        """One ER / HIO / RAAR iteration; returns (llk, llk_free) of the incoming object if asked."""
        xp = self.be.xp
        if self.positivity:
            return self._iterate_positivity(algo, beta, want_llk)
        c_pm, c_prev = self._coefficients(algo, beta)
        key, plan = self._coeff_key, self._plan
        f_pm, f_prev = self._c_fused
        if algo != "ER":
            if self.prev is None:
                self.prev = xp.empty(self.data.shape, dtype=np.complex64)
            if plan is None:
                xp.multiply(self.obj, c_prev, out=self.prev)
            elif self._prev_ready != key:
                _fused.scale_step(plan, self.obj, f_prev, out=self.prev)
        self._prev_ready = None
        res = self._modulus_projection(want_llk)
        if plan is None:
            xp.multiply(self.obj, c_pm, out=self.obj)
            if algo != "ER":
                xp.add(self.obj, self.prev, out=self.obj)
        elif algo == "ER":
            _fused.scale_step(plan, self.obj, f_pm)
        else:
            _fused.combine_step(plan, self.obj, f_pm, self.prev, f_prev)
            self._prev_ready = key
        return res

    def _iterate_positivity(
        self, algo: str, beta: float, want_llk: bool
    ) -> tuple[float, float | None] | None:
        xp = self.be.xp
        self._prev_ready = None
        prev = self.obj.copy() if algo != "ER" else None
        res = self._modulus_projection(want_llk)
        pm = self.obj
        inside = self.support & (pm.real > 0)
        if algo == "ER":
            pm *= inside
        elif algo == "HIO":
            self.obj = xp.where(inside, pm, prev - np.float32(beta) * pm).astype(np.complex64)
        else:
            self.obj = xp.where(inside, pm, np.float32(1 - 2 * beta) * pm + np.float32(beta) * prev).astype(
                np.complex64
            )
        return res

    def apply_support(self) -> None:
        """obj ← support · obj."""
        self._prev_ready = None
        self.be.xp.multiply(self.obj, self.support, out=self.obj)

    def llk(self) -> tuple[float, float | None]:
        """(llk, llk_free) of the current object (two FFTs; the object is restored)."""
        self._prev_ready = None
        be, xp = self.be, self.be.xp
        psi = be.fftn_(self.obj)
        xp.abs(psi, out=self.a)
        res = self.data.llk.evaluate(self.a, self.n_support)
        self.obj = be.ifftn_(psi)
        return res

    def scale_to_data(self, method: str = "I") -> float:
        """Scale the object to the observed intensities (PyNX ``ScaleObj``); returns the factor.

        ``"I"``: least squares on intensities; ``"F"``: on amplitudes; ``"P"``: Poisson maximum likelihood
        (Σ I_obs / Σ I_calc). Only observed, non-free voxels take part.
        """
        be, xp, d = self.be, self.be.xp, self.data
        self._prev_ready = None
        psi = be.fftn_(self.obj)
        a = self.a
        xp.abs(psi, out=a)
        self.obj = be.ifftn_(psi)
        fixed = d.fixed_idx
        m = method.upper()

        def tot(expr: Any) -> float:
            v = float(be.scalar(expr.sum(dtype=np.float64)))
            if fixed.size:
                v -= float(be.scalar(expr.ravel()[fixed].sum(dtype=np.float64)))
            return v

        if m == "F":
            t = d.llk._buf()
            xp.multiply(a, d.amp, out=t)
            num = tot(t)
            xp.multiply(a, a, out=t)
            den = tot(t)
            scale = num / den if den > 0 else 1.0
        elif m == "P":
            t = d.llk._buf()
            xp.multiply(d.amp, d.amp, out=t)
            num = float(be.scalar(t.sum(dtype=np.float64)))  # amp is 0 on fixed voxels
            xp.multiply(a, a, out=t)
            den = tot(t)
            scale = float(np.sqrt(num / den)) if den > 0 else 1.0
        else:  # "I"
            t = d.llk._buf()
            xp.multiply(a, a, out=t)  # calc
            xp.multiply(t, d.amp, out=a)
            xp.multiply(a, d.amp, out=a)  # calc * obs (0 on fixed voxels)
            num = float(be.scalar(a.sum(dtype=np.float64)))
            xp.multiply(t, t, out=t)
            den = tot(t)
            scale = float(np.sqrt(num / den)) if den > 0 else 1.0
        if not np.isfinite(scale) or scale <= 0:
            scale = 1.0
        self.obj *= np.float32(scale)
        return float(scale)

    # -- results ---------------------------------------------------------------------------------------
    def release(self) -> None:
        """Drop the iteration buffers (keeps object and support)."""
        self.a = None
        self.prev = None
        self._prev_ready = None
        self._c_pm = self._c_prev = None
        self._coeff_key = None

    def centred(self) -> tuple[np.ndarray, np.ndarray]:
        """(object complex64, support uint8) centred: FFT-native → centred, crystal rolled to the middle.

        The integer roll puts the support's periodic centre of mass at the array centre (exact, no
        interpolation), and the global phase is set so that the modulus-weighted mean phase is 0.
        """
        obj, sup, shift = centred_copy(self.be, self.obj, self.support)
        # the roll relative to plain fftshift: a centred input support comes back rolled by this
        self.centring_shift = tuple(int(sh % n - n // 2) for sh, n in zip(shift, obj.shape))
        return obj, sup


def centred_copy(be: Backend, obj: Any, support: Any) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Host copies of an FFT-native object and support, centred as :meth:`Engine.centred` returns them
    (crystal rolled to the middle, modulus-weighted mean phase 0), and the roll applied."""
    o = np.array(be.to_numpy(obj), dtype=np.complex64)
    sup = np.asarray(be.to_numpy(support))
    c = circular_centre(sup if sup.any() else np.abs(o))
    shift = tuple(int(n // 2 - round(ci) % n) for n, ci in zip(o.shape, c))
    o = np.roll(o, shift, axis=(0, 1, 2))
    sup = np.roll(sup, shift, axis=(0, 1, 2)).astype(np.uint8)
    z = o[sup.astype(bool)].sum(dtype=np.complex128) if sup.any() else o.sum(dtype=np.complex128)
    if abs(z) > 0:
        o *= np.complex64(np.conj(z) / abs(z))
    return o, sup, shift


def to_native(be: Backend, a: np.ndarray, dtype: Any) -> Any:
    """A centred host array → FFT-native backend array of ``dtype`` (a new array)."""
    return be.asarray(np.fft.ifftshift(np.asarray(a)).astype(dtype, copy=False))
