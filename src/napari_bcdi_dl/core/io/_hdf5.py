"""Small HDF5 helpers shared by the CXI and BLISS readers: safe lookups, scalars, units."""

from __future__ import annotations

import numpy as np

from ._common import to_text

J_PER_KEV = 1.602176634e-16
HC_KEV_NM = 1.23984198


def get(group, path: str):
    """``group[path]`` or None when missing or a broken link (never raises)."""
    if group is None:
        return None
    try:
        return group.get(path)
    except (KeyError, OSError, ValueError, RuntimeError):
        return None


def is_dataset(obj) -> bool:
    import h5py

    return isinstance(obj, h5py.Dataset)


def is_group(obj) -> bool:
    import h5py

    return isinstance(obj, h5py.Group)


def units(ds) -> str:
    """The ``units`` (or ``unit``) attribute of a dataset, lower case, or ''."""
    for key in ("units", "unit"):
        try:
            if key in ds.attrs:
                return to_text(ds.attrs[key]).strip().lower()
        except (OSError, RuntimeError):
            return ""
    return ""


def values(group, path: str) -> np.ndarray | None:
    """A small numeric dataset as a float64 array (any shape), or None."""
    ds = get(group, path)
    if not is_dataset(ds):
        return None
    try:
        v = np.asarray(ds[()])
    except (OSError, RuntimeError, ValueError, TypeError):
        return None
    if v.dtype.kind not in "iufb":
        return None
    return v.astype(np.float64)


def scalar(group, path: str) -> float | None:
    """A numeric scalar (first element of a 1-element array, the mean of a longer one), or None."""
    v = values(group, path)
    if v is None or v.size == 0:
        return None
    x = float(v.reshape(-1)[0]) if v.size == 1 else float(np.mean(v))
    return x if np.isfinite(x) else None


def text(group, path: str) -> str | None:
    ds = get(group, path)
    if not is_dataset(ds):
        return None
    try:
        return to_text(ds[()])
    except (OSError, RuntimeError, ValueError, TypeError):
        return None


_LENGTH = {
    "m": 1.0,
    "meter": 1.0,
    "metre": 1.0,
    "mm": 1e-3,
    "millimeter": 1e-3,
    "um": 1e-6,
    "µm": 1e-6,
    "micron": 1e-6,
    "microns": 1e-6,
    "micrometer": 1e-6,
    "nm": 1e-9,
    "cm": 1e-2,
}


def length_m(group, path: str, *, typical_m: float) -> float | None:
    """A length in m from a dataset with a ``units`` attribute; without one, guess from the magnitude.

    ``typical_m`` is the expected order of magnitude (pixel 5e-5, distance 1): a value 1e3 or 1e6 times too
    large is taken as mm or µm.
    """
    v = scalar(group, path)
    if v is None:
        return None
    u = units(get(group, path))
    if u in _LENGTH:
        return v * _LENGTH[u]
    for factor in (1.0, 1e-3, 1e-6):
        if v * factor < typical_m * 30:
            return v * factor
    return v * 1e-6


def energy_kev(group, path: str) -> float | None:
    """An X-ray energy in keV from J, eV or keV (``units`` attribute, else by magnitude)."""
    v = scalar(group, path)
    if v is None or v <= 0:
        return None
    u = units(get(group, path))
    if u == "j":
        return v / J_PER_KEV
    if u == "ev":
        return v / 1e3
    if u == "kev":
        return v
    if v < 1e-10:
        return v / J_PER_KEV
    if v > 200:
        return v / 1e3
    return v


def wavelength_to_kev(group, path: str) -> float | None:
    """Energy in keV from a wavelength dataset in m (or Å / nm by ``units`` or magnitude)."""
    v = scalar(group, path)
    if v is None or v <= 0:
        return None
    u = units(get(group, path))
    if u in ("a", "å", "angstrom", "angstroms"):
        nm = v / 10
    elif u == "nm":
        nm = v
    elif u in ("m", "") and v < 1e-6:
        nm = v * 1e9
    else:
        nm = v / 10 if v < 100 else None
    return None if not nm else HC_KEV_NM / nm
