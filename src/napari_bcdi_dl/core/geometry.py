"""BCDI geometry: detector-frame voxel sizes and orthogonalisation to the laboratory frame (ID01).

A BCDI scan samples reciprocal space on a skewed grid: frame ``n_z`` of the rocking curve, detector row
``n_y`` and column ``n_x``. Around the Bragg peak the mapping is linear,
``q = Q + B · (n − c)`` with ``c = shape // 2`` (the FFT centre), and the object recovered by phasing
(``I = |fftshift(fftn(ifftshift(obj)))|²``) lives on the conjugate grid ``r = A · (m − c)`` with

    Aᵀ B = 2π diag(1 / N)        i.e.   A = 2π B⁻ᵀ diag(1 / N).

This module builds ``B`` and ``A`` from the diffractometer angles (no xrayutilities), gives the voxel sizes
of the detector frame and resamples arrays onto an orthogonal laboratory grid. Two diffractometers are
described: ESRF ID01 (below) and APS 34-ID-C (:data:`APS_34IDC`, chosen by :func:`diffractometer_of` when
the rocking motor is ``theta`` or the angles name ``theta``/``gamma``).

Frames and conventions
----------------------
* Laboratory frame (CXI convention, as in bcdi and cdiutils): ``z`` downstream along the incident beam,
  ``y`` vertical up, ``x = y × z`` horizontal (outboard). **Vectors are stored in the array order
  (z, y, x)**, like every array of the project, so ``lab_array[iz, iy, ix]`` sits at
  ``(z, y, x) = voxel · (iz, iy, ix) − centre``.
* ID01 diffractometer (cdiutils' ``Geometry.from_setup("ID01")``): sample circles ``eta`` (outer, about
  ``x``, negative sense) carrying ``phi`` (about ``y``, negative sense); detector circles ``nu`` (outer,
  about ``y``, negative sense) carrying ``delta`` (about ``x``, negative sense). At zero angles the detector
  faces the beam, rows run along ``−y`` (down) and columns along ``+x``. So ``delta > 0`` moves the detector
  up, and the symmetric Bragg condition is ``nu = 0, delta = 2θ, eta = θ``.
* The rocking motor (``eta`` or ``phi``) increases by ``rocking_step_deg`` from one frame to the next.
* Sign of the Fourier transform: with ``fftn`` (PyNX's convention) the array maps to positions
  ``r = A (m − c)`` as stated above; with the opposite convention the reconstruction is the twin.

Voxel size of the detector frame
--------------------------------
The real-space grid of a skewed reciprocal grid is itself skewed. Its planes of constant index ``m_i`` are
perpendicular to ``b_i`` and spaced by ``2π / (N_i |b_i|)``; that spacing is what this module calls the
voxel size of the detector frame (the size a napari ``scale`` can show without an affine):

* detector rows / columns: one pixel changes ``q`` by ``k p / D`` (``k = 2π/λ``), hence **λ D / (N p)**;
* rocking axis: turning the sample by ``Δω`` about the unit axis ``â`` moves ``q`` by ``Δω |â × Q|`` which
  is ``Δω · 2k sin θ`` when ``â ⟂ Q`` (always so for ``eta`` at ``nu = 0``), hence
  **λ / (2 N_z Δω sin θ)**. bcdi's ``voxel_sizes_detector`` quotes ``λ / (N_z Δω)``, which leaves out the
  ``2 sin θ`` factor; the exact value is the one derived here (see e.g. Pfeiffer, IUCrJ 5, 2018, on the
  Bragg-geometry sampling). The lengths of the skewed voxel edges ``|a_i|`` are larger (by ``1/cos θ``
  in the symmetric case, where ``a_y ∥ −Q`` and ``a_z ∥ k_f``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .errors import BCDIError
from .types import Geometry

# circle name -> (rotation axis in the lab (x, y, z) basis, sense); outer circle first
ID01_SAMPLE_CIRCLES = (("eta", "x", -1), ("phi", "y", -1))
ID01_DETECTOR_CIRCLES = (("nu", "y", -1), ("delta", "x", -1))
_UNIT = {"x": np.array([1.0, 0.0, 0.0]), "y": np.array([0.0, 1.0, 0.0]), "z": np.array([0.0, 0.0, 1.0])}
_ROWS_AT_ZERO = -_UNIT["y"]
_COLS_AT_ZERO = _UNIT["x"]
_XYZ_TO_ZYX = np.eye(3)[::-1]  # v_zyx = _XYZ_TO_ZYX @ v_xyz (and back: it is its own inverse)


def rotation(axis: str, angle_rad: float) -> np.ndarray:
    """Right-handed rotation matrix about the lab axis ``"x"``, ``"y"`` or ``"z"`` (components x, y, z)."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    if axis == "x":
        return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    if axis == "y":
        return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    if axis == "z":
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    raise BCDIError(f"unknown rotation axis {axis!r}: use 'x', 'y' or 'z'")


def g_norm(hkl: Sequence[int], lattice_nm: float) -> float:
    """|G| in 1/nm of reflection ``hkl`` of a cubic crystal: ``2π sqrt(h² + k² + l²) / a``."""
    h = np.asarray(hkl, dtype=float).ravel()
    if h.size != 3 or not np.all(np.isfinite(h)) or not np.any(h):
        raise BCDIError(f"hkl {tuple(np.asarray(hkl).ravel())} is not a reflection: give three integers, not all 0")
    if lattice_nm is None or not np.isfinite(lattice_nm) or lattice_nm <= 0:
        raise BCDIError(f"lattice parameter {lattice_nm!r} nm is not a positive length: give it in nm (Au: 0.4078)")
    return float(2 * np.pi * np.sqrt(np.sum(h**2)) / float(lattice_nm))


def bragg_angle(wavelength_nm: float, hkl: Sequence[int], lattice_nm: float) -> float:
    """Bragg angle θ in radians (``λ = 2 d sin θ``, ``d = a / sqrt(h² + k² + l²)``)."""
    s = float(wavelength_nm) * g_norm(hkl, lattice_nm) / (4 * np.pi)
    if not 0 < s < 1:
        raise BCDIError(
            f"reflection {tuple(hkl)} of a = {lattice_nm} nm is not reachable at λ = {wavelength_nm:.5f} nm "
            "(sin θ ≥ 1): check the energy, hkl and lattice parameter"
        )
    return float(np.arcsin(s))


@dataclass
class DetectorFrame:
    """Linearised sampling of a detector-frame BCDI array (all vectors in lab components (z, y, x)).

    Attributes
    ----------
    shape : the array shape (N_z, N_y, N_x).
    q_basis : (3, 3) matrix ``B``; column ``j`` is the change of q (1/nm) for one index step along array
        axis ``j`` (0 = rocking, 1 = rows, 2 = columns).
    r_basis : (3, 3) matrix ``A = 2π B⁻ᵀ diag(1/N)``; column ``j`` is the real-space step (nm) of one voxel
        of the phased object along array axis ``j``.
    q_bragg : scattering vector Q (1/nm) at the centre of the array.
    wavelength_nm : X-ray wavelength.
    angles_deg : diffractometer angles used (``eta``, ``phi``, ``delta``, ``nu``).
    notes : assumptions made (missing angles replaced by the symmetric Bragg geometry...).
    """

    shape: tuple[int, int, int]
    q_basis: np.ndarray
    r_basis: np.ndarray
    q_bragg: np.ndarray
    wavelength_nm: float
    angles_deg: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        """Voxel size (nm) of the detector frame: spacing ``2π / (N_j |b_j|)`` of the real-space planes."""
        n = np.asarray(self.shape, dtype=float)
        return tuple(float(v) for v in 2 * np.pi / (n * np.linalg.norm(self.q_basis, axis=0)))

    @property
    def edge_lengths(self) -> tuple[float, float, float]:
        """Lengths ``|a_j|`` (nm) of the edges of one (skewed) object voxel."""
        return tuple(float(v) for v in np.linalg.norm(self.r_basis, axis=0))

    @property
    def g_direction(self) -> np.ndarray:
        """Unit vector of Q at the array centre, lab components (z, y, x)."""
        return self.q_bragg / np.linalg.norm(self.q_bragg)

    def index_direction(self, direction: Sequence[float] | None = None) -> np.ndarray:
        """Index steps per nm along a lab direction (default Q): ``A⁻¹ û``, to differentiate on the skewed grid.

        The derivative of a field ``f`` along ``û`` is ``Σ_j w_j ∂f/∂m_j`` with ``w`` returned here.
        """
        u = self.g_direction if direction is None else np.asarray(direction, dtype=float)
        u = u / np.linalg.norm(u)
        return np.linalg.solve(self.r_basis, u)


def _check_positive(value, name: str, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BCDIError(f"geometry {name} is {value!r}: {what}") from None
    if not np.isfinite(v) or v <= 0:
        raise BCDIError(f"geometry {name} is {value!r}: {what}")
    return v


def _pixel_sizes(geometry: Geometry) -> tuple[float, float]:
    p = geometry.pixel_size_m
    if p is None:
        raise BCDIError("detector pixel size unknown: give it (e.g. --pixel 55e-6 for a Maxipix)")
    p = np.atleast_1d(np.asarray(p, dtype=float)).ravel()
    if p.size == 1:
        p = np.repeat(p, 2)
    if p.size != 2:
        raise BCDIError(f"pixel size {geometry.pixel_size_m!r} must be one value or (rows, cols) in m")
    return (
        _check_positive(p[0], "pixel_size_m", "give the detector pixel size in m (e.g. 55e-6)"),
        _check_positive(p[1], "pixel_size_m", "give the detector pixel size in m (e.g. 55e-6)"),
    )


def id01_angles(
    geometry: Geometry, hkl: Sequence[int] | None = None, lattice_nm: float | None = None
) -> tuple[dict, list]:
    """The ID01 angles (degrees) of a geometry, completing what is missing; returns ``(angles, notes)``.

    With ``delta`` or ``nu`` known, missing angles are 0 (``eta`` defaults to ``delta / 2``). With neither,
    the symmetric vertical Bragg geometry of reflection ``hkl`` is assumed (``nu = 0``, ``delta = 2θ``, and
    unless given ``eta = θ``, ``phi = 0``) and said so in ``notes``.
    """
    given = {k.lower(): float(v) for k, v in (geometry.angles_deg or {}).items() if v is not None}
    notes: list = []
    if "delta" in given or "nu" in given:
        delta = given.get("delta", 0.0)
        angles = {
            "delta": delta,
            "nu": given.get("nu", 0.0),
            "eta": given.get("eta", delta / 2),
            "phi": given.get("phi", 0.0),
        }
        if "eta" not in given:
            notes.append(f"eta unknown: assumed delta/2 = {delta / 2:.4f} deg")
        return angles, notes
    hkl = hkl if hkl is not None else geometry.hkl
    lattice_nm = lattice_nm if lattice_nm is not None else geometry.lattice_nm
    if hkl is None or lattice_nm is None or geometry.wavelength_nm is None:
        raise BCDIError(
            "detector angles (delta, nu) unknown: give them, or give the energy, --hkl and --lattice so the "
            "symmetric Bragg geometry can be assumed"
        )
    theta = float(np.degrees(bragg_angle(geometry.wavelength_nm, hkl, lattice_nm)))
    notes.append(
        f"detector angles unknown: symmetric vertical Bragg geometry assumed for {tuple(int(h) for h in hkl)} "
        f"(delta = 2θ = {2 * theta:.4f} deg, nu = 0, eta = θ and phi = 0 unless given)"
    )
    return {"delta": 2 * theta, "nu": 0.0, "eta": given.get("eta", theta), "phi": given.get("phi", 0.0)}, notes


def _circles_matrix(circles, angles_deg: dict, upto: str | None = None) -> np.ndarray:
    """Product of the rotations of ``circles`` (outer first), stopping before circle ``upto``."""
    m = np.eye(3)
    for name, axis, sense in circles:
        if name == upto:
            break
        m = m @ rotation(axis, sense * np.radians(angles_deg.get(name, 0.0)))
    return m


# ------------------------------------------------------------------------------------------ APS 34-ID-C
#: APS 34-ID-C (carnisj/bcdi ``Diffractometer34ID`` / ``Beamline34ID``): sample circles theta (outer, about
#: the vertical y, positive sense: the rocking circle), chi (about z, negative sense, reads 90 deg when it is
#: the identity) and phi (about y, positive sense); detector circles delta (outer, in plane, about y,
#: positive: delta > 0 moves the detector outboard) carrying gamma (out of plane, about x, negative sense:
#: gamma > 0 moves it up). Seen from the sample at zero angles, detector rows run down (-y) and columns
#: inboard (-x). Symmetric Bragg condition: delta = 2θ, gamma = 0, theta = θ (the rocking axis is vertical).
APS34IDC_SAMPLE_CIRCLES = (("theta", "y", 1), ("chi", "z", -1), ("phi", "y", 1))
APS34IDC_DETECTOR_CIRCLES = (("delta", "y", 1), ("gamma", "x", -1))
APS34IDC_OFFSETS = {"chi": 90.0}


@dataclass(frozen=True)
class Diffractometer:
    """Circles of a beamline's diffractometer (outer circle first, each ``(name, lab axis, sense)``).

    Attributes
    ----------
    name : beamline name.
    sample_circles, detector_circles : the circles.
    rows_at_zero, cols_at_zero : lab directions (x, y, z) of increasing detector row / column at zero angles.
    rocking_motors : sample circles a rocking scan may turn (the first is the default).
    offsets : motor readings (deg) at which a circle's rotation is the identity.
    """

    name: str
    sample_circles: tuple
    detector_circles: tuple
    rows_at_zero: np.ndarray
    cols_at_zero: np.ndarray
    rocking_motors: tuple
    offsets: dict = field(default_factory=dict)

    def complete_angles(self, geometry: Geometry, hkl=None, lattice_nm=None) -> tuple[dict, list]:
        """The angles of ``geometry`` with the missing ones completed: ``(angles, notes)``."""
        if self.name == "34-ID-C":
            return aps34idc_angles(geometry, hkl, lattice_nm)
        return id01_angles(geometry, hkl, lattice_nm)


ID01 = Diffractometer("ID01", ID01_SAMPLE_CIRCLES, ID01_DETECTOR_CIRCLES, _ROWS_AT_ZERO, _COLS_AT_ZERO,
                      ("eta", "phi"))
APS_34IDC = Diffractometer("34-ID-C", APS34IDC_SAMPLE_CIRCLES, APS34IDC_DETECTOR_CIRCLES, -_UNIT["y"],
                           -_UNIT["x"], ("theta", "phi"), dict(APS34IDC_OFFSETS))


def diffractometer_of(geometry: Geometry) -> Diffractometer:
    """The diffractometer a geometry was measured with: APS 34-ID-C when its rocking motor is ``theta`` or its
    angles hold ``theta`` or ``gamma`` (34-ID-C's circles), else ID01 (the project's default)."""
    names = {str(k).lower() for k in (geometry.angles_deg or {})}
    motor = (geometry.rocking_motor or "").lower()
    if motor == "theta" or "theta" in names or "gamma" in names:
        return APS_34IDC
    return ID01


def aps34idc_angles(
    geometry: Geometry, hkl: Sequence[int] | None = None, lattice_nm: float | None = None
) -> tuple[dict, list]:
    """The 34-ID-C angles (degrees) of a geometry, completing what is missing; returns ``(angles, notes)``.

    With ``delta`` or ``gamma`` known, missing detector angles are 0, ``theta`` defaults to ``delta / 2``,
    ``chi`` to 90 (identity) and ``phi`` to 0. With neither, the symmetric in-plane Bragg geometry of ``hkl``
    is assumed (``delta = 2θ``, ``gamma = 0``, ``theta = θ`` unless given) and said so in ``notes``.
    """
    given = {k.lower(): float(v) for k, v in (geometry.angles_deg or {}).items() if v is not None}
    notes: list = []
    if "delta" in given or "gamma" in given:
        delta = given.get("delta", 0.0)
        angles = {"delta": delta, "gamma": given.get("gamma", 0.0), "theta": given.get("theta", delta / 2),
                  "chi": given.get("chi", APS34IDC_OFFSETS["chi"]), "phi": given.get("phi", 0.0)}
        if "theta" not in given:
            notes.append(f"theta unknown: assumed delta/2 = {delta / 2:.4f} deg")
        return angles, notes
    hkl = hkl if hkl is not None else geometry.hkl
    lattice_nm = lattice_nm if lattice_nm is not None else geometry.lattice_nm
    if hkl is None or lattice_nm is None or geometry.wavelength_nm is None:
        raise BCDIError(
            "detector angles (delta, gamma) unknown: give them, or give the energy, --hkl and --lattice so the "
            "symmetric Bragg geometry can be assumed"
        )
    theta = float(np.degrees(bragg_angle(geometry.wavelength_nm, hkl, lattice_nm)))
    notes.append(
        f"detector angles unknown: symmetric in-plane Bragg geometry assumed for {tuple(int(h) for h in hkl)} "
        f"(delta = 2θ = {2 * theta:.4f} deg, gamma = 0, theta = θ unless given)"
    )
    return {"delta": 2 * theta, "gamma": 0.0, "theta": given.get("theta", theta),
            "chi": given.get("chi", APS34IDC_OFFSETS["chi"]), "phi": given.get("phi", 0.0)}, notes


def detector_frame(
    geometry: Geometry,
    shape: Sequence[int],
    *,
    hkl: Sequence[int] | None = None,
    lattice_nm: float | None = None,
) -> DetectorFrame:
    """Reciprocal and direct bases of a detector-frame array of ``shape`` measured with ``geometry`` (ID01, or
    APS 34-ID-C when :func:`diffractometer_of` says so).

    Needs energy, detector distance, pixel size and rocking step; the angles are completed by
    :func:`id01_angles` (:func:`aps34idc_angles` at 34-ID-C; ``hkl``/``lattice_nm`` override the geometry's). When ``geometry.beam_center`` (the
    direct-beam pixel at ``delta = nu = 0``) and ``geometry.roi`` are known, the array centre is placed at
    its true detector pixel; otherwise the array centre is taken on the detector arm.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise BCDIError(f"array shape {shape} is not 3D: the detector frame needs (frames, rows, cols)")
    if geometry.energy_kev is None:
        raise BCDIError("X-ray energy unknown: give it in keV (e.g. --energy 9)")
    _check_positive(geometry.energy_kev, "energy_kev", "give the X-ray energy in keV (e.g. 9)")
    distance_nm = 1e9 * _check_positive(
        geometry.distance_m if geometry.distance_m is not None else np.nan,
        "distance_m",
        "give the sample-detector distance in m (e.g. --distance 1.2)",
    )
    p_row, p_col = (1e9 * p for p in _pixel_sizes(geometry))
    if geometry.rocking_step_deg is None or not np.isfinite(geometry.rocking_step_deg) or geometry.rocking_step_deg == 0:
        raise BCDIError(
            f"rocking step is {geometry.rocking_step_deg!r}: give the angular step between frames in degrees "
            "(e.g. --rocking-step 0.01)"
        )
    setup = diffractometer_of(geometry)
    motor = (geometry.rocking_motor or setup.rocking_motors[0]).lower()
    angles, notes = setup.complete_angles(geometry, hkl, lattice_nm)
    if geometry.rocking_motor is None:
        notes.append(f"rocking motor unknown: {setup.rocking_motors[0]} assumed")
    if motor not in setup.rocking_motors:
        raise BCDIError(f"rocking motor {geometry.rocking_motor!r} is not an {setup.name} sample circle: use "
                        + " or ".join(setup.rocking_motors))
    # motor offsets (34-ID-C: chi reads 90 when its rotation is the identity) are removed before rotating
    eff = {k: v - setup.offsets.get(k, 0.0) for k, v in angles.items()}

    wavelength = float(geometry.wavelength_nm)
    k = 2 * np.pi / wavelength
    r_det = _circles_matrix(setup.detector_circles, eff)
    arm, e_row, e_col = r_det @ _UNIT["z"], r_det @ setup.rows_at_zero, r_det @ setup.cols_at_zero
    d_row = d_col = 0.0
    if geometry.beam_center is not None and geometry.roi is not None:
        d_row = geometry.roi[0] + shape[1] // 2 - float(geometry.beam_center[0])
        d_col = geometry.roi[2] + shape[2] // 2 - float(geometry.beam_center[1])
    pixel = distance_nm * arm + d_row * p_row * e_row + d_col * p_col * e_col
    length = np.linalg.norm(pixel)
    kf = pixel / length
    q = k * (kf - _UNIT["z"])
    if np.linalg.norm(q) < 1e-9 * k:
        raise BCDIError("the array centre is on the direct beam (Q = 0): check delta, nu and the beam centre")

    def dkf(e: np.ndarray, p: float) -> np.ndarray:
        return k * (p / length) * (e - np.dot(e, kf) * kf)

    b_row, b_col = dkf(e_row, p_row), dkf(e_col, p_col)
    # rocking: the sample turns by R(ω) = Rot(â, s ω); in the frame of the central angle the measured
    # point is q'(ω) = Rot(â, s (ω0 − ω)) Q, so one frame moves it by −s Δω (â × Q).
    circle = {name: (axis, sense) for name, axis, sense in setup.sample_circles}
    axis_name, sense = circle[motor]
    axis = _circles_matrix(setup.sample_circles, eff, upto=motor) @ _UNIT[axis_name]
    b_rock = -sense * np.radians(float(geometry.rocking_step_deg)) * np.cross(axis, q)
    if np.linalg.norm(b_rock) < 1e-6 * np.linalg.norm(q) * abs(np.radians(geometry.rocking_step_deg)):
        raise BCDIError(f"rocking {motor} does not move Q (its axis is parallel to Q): this scan has no 3D sampling")
    b_xyz = np.stack([b_rock, b_row, b_col], axis=1)
    b = _XYZ_TO_ZYX @ b_xyz
    if abs(np.linalg.det(b)) < 1e-12 * np.prod(np.linalg.norm(b, axis=0)):
        raise BCDIError("the rocking direction lies in the detector plane: the scan does not sample 3D reciprocal space")
    a = 2 * np.pi * np.linalg.inv(b).T @ np.diag(1.0 / np.asarray(shape, dtype=float))
    return DetectorFrame(
        shape=shape,
        q_basis=b,
        r_basis=a,
        q_bragg=_XYZ_TO_ZYX @ q,
        wavelength_nm=wavelength,
        angles_deg=angles,
        notes=notes,
    )


def detector_voxel_size(
    geometry: Geometry,
    shape: Sequence[int],
    *,
    hkl: Sequence[int] | None = None,
    lattice_nm: float | None = None,
) -> tuple[float, float, float]:
    """Voxel size (nm) of the detector frame (rocking, rows, cols): ``λ/(2 N_z Δω sin θ)``, ``λD/(N_y p_y)``, ``λD/(N_x p_x)``.

    Exactly ``2π / (N_j |b_j|)`` (see the module docstring); the rocking term uses ``|â × Q|`` so it stays
    right for ``phi`` rocking or ``nu ≠ 0``.
    """
    return detector_frame(geometry, shape, hkl=hkl, lattice_nm=lattice_nm).voxel_size


def reciprocal_voxel_size(
    geometry: Geometry,
    shape: Sequence[int],
    *,
    hkl: Sequence[int] | None = None,
    lattice_nm: float | None = None,
) -> tuple[float, float, float]:
    """Size (1/nm) of one step of the measured intensity along (rocking, rows, cols): ``|b_j|``.

    ``Δω |â × Q|`` for the rocking axis (``2k sin θ Δω`` when ``â ⟂ Q``) and ``2π p / (λ D)`` for the
    detector axes: the napari ``scale`` of a diffraction pattern (not :func:`detector_voxel_size`, which is
    the real-space voxel of the object phased from it).
    """
    frame = detector_frame(geometry, shape, hkl=hkl, lattice_nm=lattice_nm)
    return tuple(float(v) for v in np.linalg.norm(frame.q_basis, axis=0))


def lab_grid(
    frame: DetectorFrame,
    voxel_size_nm: float | Sequence[float] | None = None,
    shape: Sequence[int] | None = None,
) -> tuple[tuple[float, float, float], tuple[int, int, int]]:
    """Voxel size (nm, isotropic by default: the finest detector-frame voxel) and shape of a lab grid
    holding the whole detector-frame array."""
    if voxel_size_nm is None:
        v = np.full(3, min(frame.voxel_size))
    else:
        v = np.broadcast_to(np.asarray(voxel_size_nm, dtype=float), (3,)).copy()
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise BCDIError(f"voxel size {voxel_size_nm!r} nm must be positive")
    if shape is None:
        half = np.abs(frame.r_basis) @ (np.asarray(frame.shape, dtype=float) / 2)
        shape = tuple(int(max(1, np.ceil(2 * h / vv))) for h, vv in zip(half, v))
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise BCDIError(f"lab grid shape {shape} must be three positive integers")
    return tuple(float(x) for x in v), shape


def orthogonalise(
    array: np.ndarray,
    frame: DetectorFrame,
    *,
    voxel_size_nm: float | Sequence[float] | None = None,
    shape: Sequence[int] | None = None,
    order: int = 1,
    cval: float = 0.0,
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Resample a detector-frame direct-space array onto an orthogonal lab grid (z, y, x) = (downstream, up, outboard).

    Output voxel ``o`` sits at ``r = V (o − c_out)``; it takes the value of the input at index
    ``m = A⁻¹ r + c_in`` (``c = shape // 2``), interpolated with splines of ``order`` (1 = trilinear, the
    default: safe for complex objects). Complex arrays are interpolated as real and imaginary parts.

    Returns
    -------
    (resampled array, voxel size (nm) of the lab grid)
    """
    a = np.asarray(array)
    if a.shape != tuple(frame.shape):
        raise BCDIError(f"array shape {a.shape} does not match the detector frame {tuple(frame.shape)}")
    voxel, out_shape = lab_grid(frame, voxel_size_nm, shape)
    matrix = np.linalg.solve(frame.r_basis, np.diag(voxel))
    c_in = np.asarray(a.shape) // 2
    c_out = np.asarray(out_shape) // 2
    offset = c_in - matrix @ c_out

    def resample(x: np.ndarray) -> np.ndarray:
        return ndimage.affine_transform(
            x, matrix, offset=offset, output_shape=out_shape, order=order, mode="constant", cval=cval,
            prefilter=order > 1,
        )

    if np.iscomplexobj(a):
        out = resample(a.real.astype(np.float64)) + 1j * resample(a.imag.astype(np.float64))
        return out.astype(np.complex64 if a.dtype == np.complex64 else np.complex128), voxel
    out = resample(a.astype(np.float64))
    return out.astype(a.dtype if np.issubdtype(a.dtype, np.floating) else np.float32), voxel


def detector_to_lab_positions(frame: DetectorFrame, indices: np.ndarray) -> np.ndarray:
    """Lab positions (nm, components (z, y, x)) of object voxel indices ``(..., 3)`` of the detector frame."""
    m = np.asarray(indices, dtype=float) - np.asarray(frame.shape) // 2
    return m @ frame.r_basis.T
