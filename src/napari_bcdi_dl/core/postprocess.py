"""From a reconstructed complex object to phase, displacement and strain.

The steps follow the usual BCDI post-processing (bcdi, cdiutils): optional twin choice, orthogonalisation to
the laboratory frame, phase unwrapping inside the support, removal of the linear phase ramp and of the
offset, displacement ``u = φ / |G|`` and heterogeneous strain ``ε = ∂u/∂ĝ`` along the scattering vector.

Conventions
-----------
* The object phase is ``φ = G·u`` (the project's convention, ``I = |fftshift(fftn(ifftshift(obj)))|²``).
  cdiutils multiplies PyNX phases by ``phase_factor = −1``; here the same is ``phase_sign=-1``.
  The twin (conjugate of the point-inverted object) has the opposite phase: strain signs are only fixed once
  the twin is chosen (``flip=`` or ``reference=``).
* Removing the linear phase ramp sets the reference lattice to the mean lattice of the crystal (a ramp is a
  homogeneous strain/rotation, or an off-centre Bragg peak); the offset fixes the arbitrary global phase.
* Strain: second-order central differences where both neighbours along an axis are inside the support,
  first-order one-sided differences at the surface (one neighbour outside), 0 where both are outside
  (cdiutils' "hybrid" gradient). A linear displacement field gives its exact gradient everywhere.
* Outside the support ``phase``, ``displacement`` and ``strain`` are 0 in the returned arrays (use ``support``
  to mask them); what is written or shown (``core.export`` files, the Results dock's layers) has NaN there,
  as cdiutils writes it.
* With no geometry, no voxel size and no reflection: voxel size 1 (voxel units), G along axis 0 (z), and
  ``|G|`` unknown, so the displacement is in units of the lattice-plane spacing ``d`` (``u/d = φ/2π``) and
  the "strain" is ``d`` per voxel. Give ``voxel_size_nm`` and ``hkl``/``lattice_nm`` (or a geometry) for nm and
  a true dimensionless strain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from . import geometry as geo
from .errors import BCDIError
from .progress import CancelToken, ProgressFn, report
from .types import Geometry, Reconstruction


@dataclass
class StrainResult:
    """What :func:`postprocess` returns; arrays share one shape and the frame said by ``frame``.

    Attributes
    ----------
    modulus : float32 |ρ|.
    phase : float32 phase (rad) after unwrapping, ramp and offset removal; 0 outside the support.
    displacement : float32 ``u = φ/|G|`` (nm; in units of ``d`` when ``g_norm`` is None); 0 outside.
    strain : float32 ``∂u/∂ĝ`` (dimensionless); 0 outside.
    support : uint8, 1 = inside the crystal.
    voxel_size : (z, y, x) voxel size in nm (1, 1, 1 when unknown); the napari ``scale``. In the detector
        frame the grid is skewed and these are the plane spacings (see :mod:`.geometry`).
    g_direction : unit vector of G in the Cartesian components of ``frame`` (lab (z, y, x) for "lab" and
        "detector", array axes for "array").
    g_norm : |G| in 1/nm, or None when unknown.
    frame : ``"array"`` (plain array axes), ``"detector"`` (skewed detector frame, strain computed exactly on
        it) or ``"lab"`` (orthogonalised: z downstream, y up, x outboard).
    twin : True when the twin of the input was taken.
    ramp : phase ramp removed, rad per voxel along (z, y, x) of the output grid.
    offset : phase offset removed (rad).
    notes : assumptions made on the way (shown by the CLI and the widget).
    """

    modulus: np.ndarray
    phase: np.ndarray
    displacement: np.ndarray
    strain: np.ndarray
    support: np.ndarray
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    g_direction: tuple[float, float, float] = (1.0, 0.0, 0.0)
    g_norm: float | None = None
    frame: str = "array"
    twin: bool = False
    ramp: tuple[float, float, float] = (0.0, 0.0, 0.0)
    offset: float = 0.0
    notes: list = field(default_factory=list)

    def arrays(self) -> dict:
        """The arrays and scalars to save (keys modulus, phase, displacement, strain, support, voxel_size...)."""
        return {
            "modulus": self.modulus,
            "phase": self.phase,
            "displacement": self.displacement,
            "strain": self.strain,
            "support": self.support,
            "voxel_size": np.asarray(self.voxel_size, dtype=np.float64),
            "g_direction": np.asarray(self.g_direction, dtype=np.float64),
            "g_norm": np.float64(np.nan if self.g_norm is None else self.g_norm),
            "frame": np.str_(self.frame),
        }


# ----------------------------------------------------------------------------------------------- checks
def _as_object(obj, where: str = "object") -> np.ndarray:
    a = np.asarray(obj)
    if a.ndim != 3:
        raise BCDIError(f"{where} has shape {a.shape}: a 3D (z, y, x) array is needed")
    if not np.iscomplexobj(a):
        a = a.astype(np.complex64)
    if not np.all(np.isfinite(a)):
        raise BCDIError(f"{where} holds NaN or infinite values: the reconstruction is broken, rerun the phasing")
    return a


def _as_support(support, shape, where: str = "support") -> np.ndarray:
    s = np.asarray(support)
    if s.shape != tuple(shape):
        raise BCDIError(f"{where} has shape {s.shape} but the object has {tuple(shape)}: give the matching support")
    if s.dtype.kind == "f" and not np.all(np.isfinite(s)):
        raise BCDIError(f"{where} holds NaN values: give a 0/1 support")
    s = s != 0
    if not s.any():
        raise BCDIError(f"{where} is empty: no voxel inside the crystal, check the support or the threshold")
    return s


# ------------------------------------------------------------------------------------------------- twin
def invert(array: np.ndarray) -> np.ndarray:
    """Point inversion ``a(r) → a(−r)`` about the FFT centre ``N // 2`` of each axis (exact on even grids too)."""
    a = np.fft.ifftshift(np.asarray(array))
    a = np.roll(a[::-1, ::-1, ::-1], 1, axis=(0, 1, 2))
    return np.fft.fftshift(a)


def twin(obj: np.ndarray) -> np.ndarray:
    """The twin ``conj(ρ(−r))`` of a centred object: it has exactly the same diffracted intensity.

    The inversion centre is the FFT centre ``N // 2`` (``I = |fftshift(fftn(ifftshift(obj)))|²``): on an even
    grid a plain ``obj[::-1, ::-1, ::-1]`` is off by one voxel.
    """
    return np.conj(invert(obj))


def _max_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """max over integer (circular) shifts of |Σ a conj(b_shifted)|."""
    x = np.fft.ifftn(np.fft.fftn(a) * np.conj(np.fft.fftn(b)))
    return float(np.abs(x).max())


def choose_twin(obj: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, bool]:
    """Return ``(obj or its twin, flipped)``: the one that correlates best with ``reference`` (any shift).

    Diffraction data alone cannot tell a solution from its twin; a reference (another run, a model, the
    previous scan of the same particle) can. Without one, keep the solution and choose with ``flip=``.
    """
    o = _as_object(obj)
    r = _as_object(reference, "reference")
    if r.shape != o.shape:
        raise BCDIError(f"reference shape {r.shape} differs from the object's {o.shape}: crop or pad one of them")
    t = twin(o)
    if _max_correlation(r, t) > _max_correlation(r, o):
        return t, True
    return o, False


# ------------------------------------------------------------------------------------------------- crop
def crop_slices(support: np.ndarray, margin: int = 5) -> tuple[slice, slice, slice]:
    """Slices of the bounding box of the support, enlarged by ``margin`` voxels (clipped to the array)."""
    s = np.asarray(support) != 0
    if not s.any():
        raise BCDIError("support is empty: nothing to crop around")
    if margin < 0:
        raise BCDIError(f"crop margin {margin} must be ≥ 0")
    out = []
    for axis in range(s.ndim):
        other = tuple(i for i in range(s.ndim) if i != axis)
        idx = np.flatnonzero(s.any(axis=other))
        out.append(slice(max(0, idx[0] - margin), min(s.shape[axis], idx[-1] + 1 + margin)))
    return tuple(out)


def crop(array: np.ndarray, support: np.ndarray, margin: int = 5) -> np.ndarray:
    """Copy of ``array`` cropped to the support's bounding box plus ``margin`` voxels."""
    return np.array(np.asarray(array)[crop_slices(support, margin)])


# ------------------------------------------------------------------------------------------------ phase
def unwrap(phase: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Unwrap a 3D phase inside the support (scikit-image's reliability-guided unwrapper); 0 outside.

    Disconnected parts of the support are unwrapped independently (each up to its own 2π multiple).
    """
    from skimage.restoration import unwrap_phase

    s = np.asarray(support) != 0
    masked = np.ma.masked_array(np.asarray(phase, dtype=np.float64), mask=~s)
    out = unwrap_phase(masked, wrap_around=False, rng=0)
    return np.where(s, np.ma.getdata(out), 0.0)


_unwrap = unwrap


def _centred_indices(shape) -> list[np.ndarray]:
    return [np.arange(n, dtype=np.float64) - n // 2 for n in shape]


def phase_ramp(phase: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares plane ``c + g·(m − centre)`` through the (unwrapped) phase over the support.

    Returns ``(g, c)``: the gradient in rad per voxel along (z, y, x) and the value at the array centre.
    """
    s = np.asarray(support) != 0
    idx = np.nonzero(s)
    centre = np.asarray(s.shape) // 2
    design = np.column_stack([np.ones(idx[0].size)] + [i - c for i, c in zip(idx, centre)])
    coef, *_ = np.linalg.lstsq(design, np.asarray(phase, dtype=np.float64)[idx], rcond=None)
    return coef[1:], float(coef[0])


def ramp_array(gradient: Sequence[float], shape) -> np.ndarray:
    """The plane ``g·(m − centre)`` on a grid of ``shape`` (rad)."""
    z, y, x = _centred_indices(shape)
    g = np.asarray(gradient, dtype=np.float64)
    return g[0] * z[:, None, None] + g[1] * y[None, :, None] + g[2] * x[None, None, :]


def remove_phase_ramp(phase: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Subtract the least-squares phase plane over the support; returns ``(phase, gradient rad/voxel)``, 0 outside."""
    s = np.asarray(support) != 0
    g, _ = phase_ramp(phase, s)
    return np.where(s, phase - ramp_array(g, s.shape), 0.0), g


def complex_phase_ramp(obj: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Phase gradient (rad/voxel) from products of neighbours inside the support: immune to phase wraps.

    ``g_j = arg Σ ρ(m + e_j) conj(ρ(m))`` over pairs of support voxels (modulus-weighted).
    """
    o = np.asarray(obj)
    s = np.asarray(support) != 0
    g = np.zeros(3)
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        pairs = s[tuple(lo)] & s[tuple(hi)]
        if pairs.any():
            g[axis] = np.angle(np.sum((o[tuple(hi)] * np.conj(o[tuple(lo)]))[pairs]))
    return g


def remove_offset(
    phase: np.ndarray, support: np.ndarray, offset: str | float | None = "mean", *, circular: bool = False
) -> tuple[np.ndarray, float]:
    """Subtract a phase offset: ``"mean"`` over the support, ``"com"`` (phase at the support's centre of
    mass, or the support voxel nearest to it), a number (rad), or None/``"none"``. Returns ``(phase, offset)``.

    ``circular``: the phase is wrapped; the mean is then the circular mean ``arg Σ exp(iφ)``.
    """
    s = np.asarray(support) != 0
    p = np.asarray(phase, dtype=np.float64)
    if offset is None or (isinstance(offset, str) and offset.lower() == "none"):
        value = 0.0
    elif isinstance(offset, str) and offset.lower() == "mean":
        value = float(np.angle(np.sum(np.exp(1j * p[s])))) if circular else float(p[s].mean())
    elif isinstance(offset, str) and offset.lower() == "com":
        com = np.asarray(ndimage.center_of_mass(s))
        idx = np.argwhere(s)
        nearest = idx[np.argmin(np.sum((idx - com) ** 2, axis=1))]
        value = float(p[tuple(nearest)])
    elif isinstance(offset, (int, float, np.floating, np.integer)) and np.isfinite(offset):
        value = float(offset)
    else:
        raise BCDIError(f"phase offset {offset!r} is not understood: use 'mean', 'com', 'none' or a number in rad")
    return np.where(s, p - value, 0.0), value


# ------------------------------------------------------------------------------------ displacement/strain
def displacement(phase: np.ndarray, g_norm_nm: float | None) -> np.ndarray:
    """``u = φ / |G|`` in nm (``|G|`` in 1/nm); with ``g_norm_nm=None``, ``φ / 2π`` in units of ``d``."""
    g = 2 * np.pi if g_norm_nm is None else float(g_norm_nm)
    if not np.isfinite(g) or g <= 0:
        raise BCDIError(f"|G| = {g_norm_nm!r} 1/nm is not positive: check hkl and the lattice parameter")
    return np.asarray(phase, dtype=np.float64) / g


def hybrid_gradient(field_: np.ndarray, support: np.ndarray, axis: int, *, period: float | None = None) -> np.ndarray:
    """Derivative (per voxel) along ``axis`` using support voxels only.

    Central difference ``(f[i+1] − f[i−1]) / 2`` where both neighbours are inside, forward or backward
    difference where one is. A support voxel with no neighbour along ``axis`` (a one-voxel-thick column)
    takes the derivative of the nearest voxel that has one. 0 outside the support.

    ``period`` (e.g. 2π for a phase): each one-voxel difference is wrapped into ``[−period/2, period/2)``
    first, so a wrapped (or badly unwrapped) phase gives the same gradient as the unwrapped one wherever it
    changes by less than half a period per voxel.
    """
    f = np.asarray(field_, dtype=np.float64)
    s = np.asarray(support) != 0
    fp = np.zeros_like(f)
    fm = np.zeros_like(f)
    sp = np.zeros_like(s)
    sm = np.zeros_like(s)
    inner = [slice(None)] * 3
    outer = [slice(None)] * 3
    inner[axis], outer[axis] = slice(0, -1), slice(1, None)
    fp[tuple(inner)], sp[tuple(inner)] = f[tuple(outer)], s[tuple(outer)]  # value at i+1
    fm[tuple(outer)], sm[tuple(outer)] = f[tuple(inner)], s[tuple(inner)]  # value at i-1
    both, only_p, only_m = s & sp & sm, s & sp & ~sm, s & sm & ~sp
    dp, dm = fp - f, f - fm  # forward and backward one-voxel differences
    if period is not None:
        dp = (dp + period / 2) % period - period / 2
        dm = (dm + period / 2) % period - period / 2
    out = np.zeros_like(f)
    out[both] = (dp[both] + dm[both]) / 2
    out[only_p] = dp[only_p]
    out[only_m] = dm[only_m]
    defined = both | only_p | only_m
    lonely = s & ~defined
    if lonely.any() and defined.any():
        _, nearest = ndimage.distance_transform_edt(~defined, return_indices=True)
        out[lonely] = out[tuple(i[lonely] for i in nearest)]
    return out


def directional_derivative(
    field_: np.ndarray, support: np.ndarray, index_direction: Sequence[float], *, period: float | None = None
) -> np.ndarray:
    """``Σ_j w_j ∂f/∂m_j`` (``w`` = index steps per unit length along the wanted direction), 0 outside.

    ``period``: see :func:`hybrid_gradient`."""
    w = np.asarray(index_direction, dtype=np.float64).ravel()
    if w.size != 3 or not np.all(np.isfinite(w)):
        raise BCDIError(f"direction {tuple(w)} must be three finite numbers")
    out = np.zeros(np.shape(field_), dtype=np.float64)
    for axis in range(3):
        if w[axis] != 0:
            out += w[axis] * hybrid_gradient(field_, support, axis, period=period)
    return out


def _unit(v, what: str) -> np.ndarray:
    u = np.asarray(v, dtype=np.float64).ravel()
    if u.size != 3 or not np.all(np.isfinite(u)) or not np.any(u):
        raise BCDIError(f"{what} {tuple(np.asarray(v).ravel())} must be three numbers, not all 0 (z, y, x)")
    return u / np.linalg.norm(u)


def strain(
    displacement_: np.ndarray,
    support: np.ndarray,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    g_direction: Sequence[float] = (1.0, 0.0, 0.0),
    *,
    index_direction: Sequence[float] | None = None,
    period: float | None = None,
) -> np.ndarray:
    """Heterogeneous strain ``ε = ĝ·∇u`` on a Cartesian grid of ``voxel_size`` (z, y, x), 0 outside the support.

    ``index_direction`` (index steps per nm along ĝ, e.g. :meth:`.DetectorFrame.index_direction`) replaces
    ``voxel_size``/``g_direction`` on a skewed grid. ``period``: the displacement is only known modulo this
    (``2π/|G|`` for a wrapped phase), see :func:`hybrid_gradient`.
    """
    if index_direction is None:
        v = np.asarray(voxel_size, dtype=np.float64).ravel()
        if v.size != 3 or not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise BCDIError(f"voxel size {tuple(v)} must be three positive lengths")
        index_direction = _unit(g_direction, "G direction") / v
    return directional_derivative(displacement_, support, index_direction, period=period)


# ------------------------------------------------------------------------------------------ the pipeline
def _reflection(geometry: Geometry | None, hkl, lattice_nm):
    hkl = hkl if hkl is not None else (geometry.hkl if geometry is not None else None)
    lattice_nm = lattice_nm if lattice_nm is not None else (geometry.lattice_nm if geometry is not None else None)
    return hkl, lattice_nm


def postprocess(
    obj: np.ndarray | Reconstruction,
    support: np.ndarray | None = None,
    geometry: Geometry | None = None,
    *,
    hkl: Sequence[int] | None = None,
    lattice_nm: float | None = None,
    voxel_size_nm: Sequence[float] | None = None,
    g_direction: Sequence[float] | None = None,
    unwrap: bool = True,
    remove_ramp: bool = True,
    offset: str | float | None = "mean",
    flip: bool = False,
    reference: np.ndarray | None = None,
    isosurface: float | None = None,
    orthogonalise: bool | None = None,
    lab_voxel_nm: float | None = None,
    crop_margin: int | None = None,
    phase_sign: int = 1,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> StrainResult:
    """Modulus, phase, displacement and strain of a reconstruction.

    Parameters
    ----------
    obj : complex object (z, y, x), centred, or a :class:`~.types.Reconstruction` (its support is used
        when ``support`` is None).
    support : uint8/bool support, 1 = inside. None: the reconstruction's, else ``|ρ| ≥ 0.3 max``.
    geometry : experiment geometry. When it allows a detector frame (energy, distance, pixel size, rocking
        step and either the angles or ``hkl``/``lattice_nm``, see :func:`.geometry.detector_frame`), the
        result is in the lab frame (``orthogonalise=None`` or True) or in the skewed detector frame
        (``orthogonalise=False``, strain then computed exactly on the skewed grid), with G along Q. An
        incomplete geometry falls back to ``voxel_size_nm`` (or 1) with a note. The object must have the
        shape of the data it was phased from (the detector-frame voxel is ``λD/(N p)``...): crop after.
    hkl, lattice_nm : reflection and cubic lattice parameter (nm): ``|G| = 2π sqrt(h²+k²+l²)/a``. Without
        them ``|G|`` is ``|Q|`` of the geometry, else unknown (displacement in units of ``d``).
    voxel_size_nm : (z, y, x) voxel size of a Cartesian array (when no detector frame is used).
    g_direction : unit vector of G, components (z, y, x) of the output frame's Cartesian axes (lab axes
        when a geometry is used). Default: Q of the geometry, else axis 0 (z).
    unwrap, remove_ramp, offset : phase processing (offset ``"mean"``, ``"com"``, None or a number).
    flip : take the twin of the input. reference : choose the twin that best matches this object (same
        shape as ``obj``, same frame).
    isosurface : keep only support voxels with ``|ρ| ≥ isosurface · max|ρ|`` (e.g. 0.3) to drop the noisy
        low-density rim before computing strain.
    lab_voxel_nm : isotropic voxel of the lab grid (default: the finest detector-frame voxel).
    crop_margin : crop the outputs to the support's bounding box plus this many voxels.
    phase_sign : multiply the phase by this (−1 for a phase defined as −G·u, cdiutils' ``phase_factor``).
    progress, cancel : see :mod:`.progress`.
    """
    total = 8
    report(progress, cancel, 0, total)
    notes: list = []
    if isinstance(obj, Reconstruction):
        if support is None:
            support = obj.support
        obj = obj.obj
    o = _as_object(obj).astype(np.complex128)
    if support is None:
        mod = np.abs(o)
        if mod.max() <= 0:
            raise BCDIError("object is zero everywhere: nothing to post-process")
        support = mod >= 0.3 * mod.max()
        notes.append("no support given: |ρ| ≥ 0.3 max used")
    s = _as_support(support, o.shape)
    if phase_sign not in (1, -1):
        raise BCDIError(f"phase_sign {phase_sign!r} must be 1 or -1")
    if phase_sign == -1:
        o = np.conj(o)

    # twin
    flipped = False
    if reference is not None:
        o, flipped = choose_twin(o, reference)
        if flipped:
            s = invert(s)
    if flip:
        o, s, flipped = twin(o), invert(s), not flipped
    report(progress, cancel, 1, total)

    if isosurface is not None:
        if not 0 <= float(isosurface) < 1:
            raise BCDIError(f"isosurface {isosurface!r} must be a fraction of the maximum modulus in [0, 1)")
        mod = np.abs(o)
        s = s & (mod >= float(isosurface) * mod[s].max())
        if not s.any():
            raise BCDIError(f"no support voxel has |ρ| ≥ {isosurface} max: lower the isosurface")

    # frame
    hkl, lattice_nm = _reflection(geometry, hkl, lattice_nm)
    frame = None
    if geometry is not None:
        try:
            frame = geo.detector_frame(geometry, o.shape, hkl=hkl, lattice_nm=lattice_nm)
            notes.extend(frame.notes)
        except BCDIError as err:
            if orthogonalise:
                raise
            notes.append(f"geometry incomplete ({err}): detector frame not used")
    elif orthogonalise:
        raise BCDIError("orthogonalisation needs a geometry (energy, distance, pixel size, rocking step, angles)")
    g_norm_nm: float | None = None
    if hkl is not None and lattice_nm is not None:
        g_norm_nm = geo.g_norm(hkl, lattice_nm)
    elif frame is not None:
        g_norm_nm = float(np.linalg.norm(frame.q_bragg))
        notes.append("|G| taken as |Q| at the array centre (no hkl/lattice given)")
    else:
        notes.append("|G| unknown (no hkl/lattice): displacement in units of d (u/d = φ/2π)")
    report(progress, cancel, 2, total)

    # a large ramp (off-centre Bragg peak) is removed on the complex object first: this makes unwrapping
    # and interpolation easier; the least-squares fit after unwrapping removes what is left.
    ramp_total = np.zeros(3)
    if remove_ramp:
        g0 = complex_phase_ramp(o, s)
        o = o * np.exp(-1j * ramp_array(g0, o.shape))
        ramp_total += g0

    if frame is not None and orthogonalise is not False:
        o, voxel = geo.orthogonalise(o, frame, voxel_size_nm=lab_voxel_nm)
        s_lab, _ = geo.orthogonalise(s.astype(np.float32), frame, voxel_size_nm=lab_voxel_nm)
        s = s_lab >= 0.5
        if not s.any():
            raise BCDIError("the support vanished on the lab grid: choose a smaller lab_voxel_nm")
        out_frame, ramp_total = "lab", np.zeros(3)  # ramp of the detector grid has no meaning on the lab grid
        ghat = frame.g_direction if g_direction is None else _unit(g_direction, "G direction")
        index_dir = ghat / np.asarray(voxel)
    elif frame is not None:
        out_frame, voxel = "detector", frame.voxel_size
        ghat = frame.g_direction if g_direction is None else _unit(g_direction, "G direction")
        index_dir = frame.index_direction(ghat)
    else:
        out_frame = "array"
        if voxel_size_nm is None:
            voxel = (1.0, 1.0, 1.0)
            notes.append("voxel size unknown: 1 (voxel units)")
        else:
            v = np.broadcast_to(np.asarray(voxel_size_nm, dtype=np.float64), (3,))
            if not np.all(np.isfinite(v)) or np.any(v <= 0):
                raise BCDIError(f"voxel size {voxel_size_nm!r} nm must be three positive lengths")
            voxel = tuple(float(x) for x in v)
        if g_direction is None:
            notes.append("G direction unknown: axis 0 (z) assumed")
        ghat = _unit((1.0, 0.0, 0.0) if g_direction is None else g_direction, "G direction")
        index_dir = ghat / np.asarray(voxel)
    report(progress, cancel, 3, total)

    if crop_margin is not None:
        sl = crop_slices(s, int(crop_margin))
        o, s = o[sl], s[sl]

    # phase
    phase = np.where(s, np.angle(o), 0.0)
    if unwrap:
        phase = _unwrap(phase, s)  # the keyword ``unwrap`` shadows the function here
    report(progress, cancel, 4, total)
    if remove_ramp and unwrap:
        phase, g1 = remove_phase_ramp(phase, s)
        ramp_total = ramp_total + g1
    elif remove_ramp:  # wrapped phase: mean gradient of the complex field, immune to wraps
        g1 = complex_phase_ramp(np.where(s, np.exp(1j * phase), 0), s)
        phase = np.where(s, np.angle(np.exp(1j * (phase - ramp_array(g1, s.shape)))), 0.0)
        ramp_total = ramp_total + g1
    phase, offset_value = remove_offset(phase, s, offset, circular=not unwrap)
    if not unwrap:
        phase = np.where(s, np.angle(np.exp(1j * phase)), 0.0)
    report(progress, cancel, 5, total)

    g_used = 2 * np.pi if g_norm_nm is None else g_norm_nm
    u = np.where(s, displacement(phase, g_norm_nm), 0.0)
    report(progress, cancel, 6, total)
    # one-voxel differences of u are wrapped to ±π/|G|: the strain is right even where the phase is wrapped
    eps = strain(u, s, index_direction=index_dir, period=2 * np.pi / g_used)
    report(progress, cancel, 7, total)

    result = StrainResult(
        modulus=np.abs(o).astype(np.float32),
        phase=phase.astype(np.float32),
        displacement=u.astype(np.float32),
        strain=eps.astype(np.float32),
        support=s.astype(np.uint8),
        voxel_size=tuple(float(v) for v in voxel),
        g_direction=tuple(float(x) for x in ghat),
        g_norm=g_norm_nm,
        frame=out_frame,
        twin=bool(flipped),
        ramp=tuple(float(x) for x in ramp_total),
        offset=float(offset_value),
        notes=notes,
    )
    report(progress, cancel, total, total)
    return result

