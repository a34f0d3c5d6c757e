"""Geometry that cannot be silently wrong: refuse a partial geometry, warn when the angles disagree.

The real-space voxel size needs four numbers (energy, detector distance, pixel size, rocking step). With
some of them only, the post-processing used to fall back to voxel units while the user thought of nm;
:func:`check_geometry` refuses that in one line naming what is missing (all four, or none and a voxel
size). It also refuses an ``hkl`` without a lattice parameter (or the reverse), and a complete setup whose
detector angles are unknown and cannot be completed from ``hkl``/``lattice``.

:func:`angle_warnings` compares the scattering angle 2θ of the detector angles (at the array centre,
:func:`.geometry.detector_frame`) with the 2θ that ``hkl``, the energy and the lattice parameter imply
(Bragg's law): a disagreement of more than :data:`TWO_THETA_TOLERANCE_DEG` means a wrong reflection,
energy, lattice parameter or angle, and the strain would be wrong; the warning gives both values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import geometry as geo
from .errors import BCDIError
from .types import Geometry

#: the four values the real-space voxel size needs: (Geometry field, plain name)
SETUP_FIELDS = (("energy_kev", "energy"), ("distance_m", "detector distance"), ("pixel_size_m", "pixel size"),
                ("rocking_step_deg", "rocking step"))
#: 2θ of the angles and of hkl/energy/lattice may differ by this much before a warning (degrees)
TWO_THETA_TOLERANCE_DEG = 0.2


def _label(field: str, plain: str, labels: dict | None) -> str:
    return (labels or {}).get(field, plain)


def setup_known(geometry: Geometry | None) -> list[str]:
    """The :data:`SETUP_FIELDS` of ``geometry`` that are known (field names)."""
    if geometry is None:
        return []
    return [f for f, _ in SETUP_FIELDS if getattr(geometry, f) is not None]


def is_complete(geometry: Geometry | None) -> bool:
    """True when energy, distance, pixel size and rocking step are all known."""
    return len(setup_known(geometry)) == len(SETUP_FIELDS)


def check_geometry(geometry: Geometry | None, *, hkl: Sequence[int] | None = None, lattice_nm: float | None = None,
                   labels: dict | None = None) -> None:
    """Refuse a partial geometry (see the module docstring) with a one-line :class:`BCDIError`.

    Parameters
    ----------
    geometry : what is known (None: nothing, fine).
    hkl, lattice_nm : the reflection and lattice parameter in use (default: the geometry's).
    labels : ``{Geometry field or "hkl"/"lattice_nm": how the user gives it}`` (``"--energy"`` for the
        CLI, ``"Energy (keV)"`` in the dock), used in the message.
    """
    hkl = hkl if hkl is not None else getattr(geometry, "hkl", None)
    lattice_nm = lattice_nm if lattice_nm is not None else getattr(geometry, "lattice_nm", None)
    known = setup_known(geometry)
    if known and len(known) < len(SETUP_FIELDS):
        given = ", ".join(_label(f, p, labels) for f, p in SETUP_FIELDS if f in known)
        missing = ", ".join(_label(f, p, labels) for f, p in SETUP_FIELDS if f not in known)
        raise BCDIError(f"partial geometry: {given} given but {missing} missing: give all four for a result in nm, "
                        "or none of them and a voxel size")
    if (hkl is None) != (lattice_nm is None):
        have, lack = ("hkl", "lattice_nm") if hkl is not None else ("lattice_nm", "hkl")
        raise BCDIError(f"{_label(have, have.replace('_nm', ''), labels)} given but "
                        f"{_label(lack, lack.replace('_nm', ''), labels)} missing: give both (|G| needs the "
                        "reflection and the lattice parameter) or neither")
    if known and hkl is None:
        angles = {k.lower() for k, v in (geometry.angles_deg or {}).items() if v is not None}
        if not angles & {"delta", "nu"}:
            raise BCDIError(f"detector angles unknown: give {_label('delta', 'delta', labels)} (and "
                            f"{_label('nu', 'nu', labels)}), or {_label('hkl', 'hkl', labels)} and "
                            f"{_label('lattice_nm', 'the lattice', labels)} for the symmetric Bragg geometry")


def two_theta_of_angles(geometry: Geometry, shape: Sequence[int]) -> float | None:
    """2θ (degrees) at the array centre from the detector angles, or None when delta/nu are not given."""
    angles = {k.lower() for k, v in (geometry.angles_deg or {}).items() if v is not None}
    if not angles & {"delta", "nu"} or not is_complete(geometry):
        return None
    frame = geo.detector_frame(geometry, shape)
    s = float(np.linalg.norm(frame.q_bragg)) * frame.wavelength_nm / (4 * np.pi)
    return float(np.degrees(2 * np.arcsin(min(s, 1.0))))


def two_theta_of_reflection(geometry: Geometry, hkl: Sequence[int] | None = None,
                            lattice_nm: float | None = None) -> float | None:
    """2θ (degrees) of reflection ``hkl`` of a cubic lattice at the geometry's energy, or None."""
    hkl = hkl if hkl is not None else geometry.hkl
    lattice_nm = lattice_nm if lattice_nm is not None else geometry.lattice_nm
    if hkl is None or lattice_nm is None or geometry.wavelength_nm is None:
        return None
    return float(np.degrees(2 * geo.bragg_angle(geometry.wavelength_nm, hkl, lattice_nm)))


def angle_warnings(geometry: Geometry | None, shape: Sequence[int], *, hkl: Sequence[int] | None = None,
                   lattice_nm: float | None = None, tolerance_deg: float = TWO_THETA_TOLERANCE_DEG) -> list[str]:
    """A warning (list of one line, or empty) when the detector angles' 2θ and Bragg's 2θ disagree."""
    if geometry is None:
        return []
    from_angles = two_theta_of_angles(geometry, shape)
    from_hkl = two_theta_of_reflection(geometry, hkl, lattice_nm)
    if from_angles is None or from_hkl is None or abs(from_angles - from_hkl) <= tolerance_deg:
        return []
    h = tuple(int(x) for x in (hkl if hkl is not None else geometry.hkl))
    a = lattice_nm if lattice_nm is not None else geometry.lattice_nm
    text = (f"the detector angles give 2θ = {from_angles:.3f}° but reflection {h} of a = {a:g} nm at "
            f"{geometry.energy_kev:g} keV gives 2θ = {from_hkl:.3f}°: check hkl, the lattice parameter, the energy "
            "and the angles (the strain scale depends on them)")
    return [text]


def geometry_for_strain(geometry: Geometry, voxel_size_nm, shape: Sequence[int], *, setup_given: bool,
                        labels: dict | None = None, voxel_label: str = "a voxel size",
                        source: str = "the file") -> tuple[Geometry, list[str], list[str]]:
    """The geometry to post-process with, as ``bcdi-dl strain``, ``bcdi-dl run`` and the Results dock use it.

    A partial setup in the file (``source``) is dropped when the user gave a voxel size (``voxel_label``)
    and no setup value of their own (``setup_given`` False); then a partial geometry is refused in one line
    (:func:`check_geometry` with ``labels``); detector angles that disagree with hkl/energy/lattice give a
    warning (:func:`angle_warnings`).

    Returns
    -------
    (geometry, notes, warnings): the notes say what was dropped and why.
    """
    import dataclasses

    notes: list[str] = []
    if not setup_given and voxel_size_nm is not None and setup_known(geometry) and not is_complete(geometry):
        notes.append(f"{source}'s partial geometry ({', '.join(setup_known(geometry))}) not used: "
                     f"{voxel_label} given")
        geometry = dataclasses.replace(geometry, **{f: None for f, _ in SETUP_FIELDS})
    check_geometry(geometry, labels=labels)
    warnings = angle_warnings(geometry, shape) if is_complete(geometry) else []
    return geometry, notes, warnings

