"""What people look at in a BCDI result: the modulus isosurface coloured by a field, and slices through the
crystal's centre of mass.

* :func:`coloured_isosurface` — the isosurface ``|ρ| = threshold · max|ρ|`` (scikit-image
  ``marching_cubes``) with vertices in nm (``(z, y, x)``, the array's voxel ``(0, 0, 0)`` at the origin,
  as napari places an Image layer of that ``scale``) and, at every vertex, the field (strain, displacement
  or phase) sampled by trilinear interpolation (``scipy.ndimage.map_coordinates``, ``order=1``). The field is
  only defined inside the support (NaN or 0 outside, as written by the post-processing): voxels outside the
  support (or NaN) are first given the value of the nearest valid voxel, so the vertices on the crystal's
  surface take the crystal's values, not a mix with the empty outside. Colour limits are symmetric about
  zero (a diverging colormap centred on "no strain"), ``±`` the 99.5th percentile of ``|value|``.
* :func:`centre_of_mass` and :func:`com_slices` — the modulus-weighted centre of mass inside the support and
  the three orthogonal slices through it, with their extents in nm (for panels and the report).

Numpy/scipy/scikit-image only: the widgets call these in a worker, the report and the CLI directly.
A 128³ result takes well under a second (the isosurface is computed on the crystal's bounding box only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .errors import BCDIError
from .progress import CancelToken, ProgressFn, report

#: the fields an isosurface can be coloured by: ``{name: StrainResult attribute}``
FIELDS = {"strain": "strain", "displacement": "displacement", "phase": "phase"}
#: percentile of ``|value|`` giving the symmetric colour limits
LIMIT_PERCENTILE = 99.5


@dataclass
class ColouredSurface:
    """A triangle mesh with one value per vertex.

    Attributes
    ----------
    vertices : float32 (n, 3) vertex positions in nm, (z, y, x), voxel (0, 0, 0) at the origin.
    faces : int32 (m, 3) vertex indices of the triangles.
    values : float32 (n,) the field at the vertices (trilinear).
    limits : symmetric colour limits ``(-L, L)`` (L > 0).
    field : ``"strain"``, ``"displacement"`` or ``"phase"``.
    unit : the field's unit (``""`` for strain, ``"nm"``, ``"rad"``...).
    level : the modulus value of the isosurface.
    threshold : the same as a fraction of the maximum modulus.
    voxel_size : (z, y, x) voxel size in nm used for the vertices.
    """

    vertices: np.ndarray
    faces: np.ndarray
    values: np.ndarray
    limits: tuple[float, float]
    field: str = "strain"
    unit: str = ""
    level: float = 0.0
    threshold: float = 0.3
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def layer_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(vertices, faces, values)``: the data of a napari Surface layer (scale 1, units nm)."""
        return self.vertices, self.faces, self.values

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])


# -------------------------------------------------------------------------------------------- checks
def _voxel(voxel_size, where: str = "voxel size") -> np.ndarray:
    v = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,)).copy()
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise BCDIError(f"{where} {tuple(np.ravel(voxel_size))} must be three positive lengths in nm")
    return v


def _volume(a, where: str) -> np.ndarray:
    x = np.asarray(a)
    if x.ndim != 3:
        raise BCDIError(f"{where} has shape {x.shape}: a 3D (z, y, x) array is needed")
    return x


def symmetric_limits(values: np.ndarray, percentile: float = LIMIT_PERCENTILE) -> tuple[float, float]:
    """``(-L, L)`` with ``L`` the ``percentile`` of ``|values|`` (finite ones); a tiny positive L when all are 0."""
    v = np.abs(np.asarray(values, dtype=np.float64))
    v = v[np.isfinite(v)]
    lim = float(np.percentile(v, percentile)) if v.size else 0.0
    if not lim > 0:
        lim = float(v.max()) if v.size and v.max() > 0 else 1e-12
    return -lim, lim


def filled(field_: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``field_`` with every invalid voxel given the value of the nearest valid one (float64 copy)."""
    f = np.asarray(field_, dtype=np.float64)
    ok = np.asarray(valid, dtype=bool) & np.isfinite(f)
    if ok.all():
        return f.copy()
    if not ok.any():
        raise BCDIError("the field has no valid value (all NaN or outside the support): nothing to colour by")
    idx = ndimage.distance_transform_edt(~ok, return_distances=False, return_indices=True)
    return f[tuple(idx)]


def sample_trilinear(field_: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``field_`` at ``points`` (n, 3) in index units (z, y, x), trilinear (``map_coordinates`` order 1);
    points beyond the array take the nearest edge value."""
    p = np.asarray(points, dtype=np.float64)
    return ndimage.map_coordinates(np.asarray(field_, dtype=np.float64), p.T, order=1, mode="nearest")


# ------------------------------------------------------------------------------------------ isosurface
def coloured_isosurface(
    modulus: np.ndarray,
    field_: np.ndarray,
    *,
    threshold: float = 0.3,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    support: np.ndarray | None = None,
    field: str = "strain",
    unit: str = "",
    step: int = 1,
    limits: tuple[float, float] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ColouredSurface:
    """The isosurface of ``modulus`` at ``threshold · max`` coloured by ``field_`` (see the module docstring).

    Parameters
    ----------
    modulus : 3D real array (|ρ|).
    field_ : 3D array of the same shape, the values to colour by (NaN outside the support is fine).
    threshold : fraction of the maximum modulus, in (0, 1).
    voxel_size : (z, y, x) voxel size in nm: the vertices' units.
    support : 1 inside the crystal; the field is taken from inside it only (None: wherever it is finite).
    field, unit : name and unit of the field, carried in the result.
    step : marching-cubes step (1 = full resolution; 2 = ~4× fewer triangles, for a quick rendering).
    limits : colour limits to use (e.g. shared by several surfaces); default :func:`symmetric_limits` of
        the vertex values.
    progress, cancel : see :mod:`.progress` (three steps).

    Returns
    -------
    ColouredSurface
    """
    from skimage.measure import marching_cubes

    mod = _volume(modulus, "modulus")
    fld = _volume(field_, field)
    if fld.shape != mod.shape:
        raise BCDIError(f"{field} has shape {fld.shape}, the modulus {mod.shape}: give arrays of one result")
    if not 0 < float(threshold) < 1:
        raise BCDIError(f"isosurface threshold {threshold!r} must be a fraction of the maximum modulus in (0, 1)")
    if int(step) < 1:
        raise BCDIError(f"marching-cubes step {step!r} must be a positive integer")
    v = _voxel(voxel_size)
    report(progress, cancel, 0, 3)
    mod = np.where(np.isfinite(mod), mod, 0).astype(np.float32, copy=False)
    top = float(mod.max())
    if not top > 0:
        raise BCDIError("the modulus is zero everywhere: no isosurface")
    level = float(threshold) * top
    inside = mod >= level
    if support is not None:
        sup = np.asarray(support)
        if sup.shape != mod.shape:
            raise BCDIError(f"support has shape {sup.shape}, the modulus {mod.shape}: give the result's support")
        valid = sup != 0
    else:
        valid = np.ones(mod.shape, bool)
    # the crystal's bounding box, one voxel of margin, padded with zeros so the surface is closed
    lo, hi = [], []
    for axis in range(3):
        other = tuple(i for i in range(3) if i != axis)
        idx = np.flatnonzero(inside.any(axis=other))
        lo.append(max(0, int(idx[0]) - 2))
        hi.append(min(mod.shape[axis], int(idx[-1]) + 3))
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    sub = np.pad(mod[box], 1, mode="constant")
    report(progress, cancel, 1, 3)
    try:
        verts, faces, _normals, _ = marching_cubes(sub, level=level, step_size=int(step), allow_degenerate=False)
    except (ValueError, RuntimeError) as err:
        raise BCDIError(f"no isosurface at {threshold:g} × max modulus ({err}): choose another threshold") from None
    index = verts.astype(np.float64) - 1.0 + np.asarray(lo, dtype=np.float64)  # index units of the full array
    report(progress, cancel, 2, 3)
    # the field, extended from the support outwards, on the box (+1 voxel for the interpolation)
    fbox = tuple(slice(max(0, a - 1), min(n, b + 1)) for a, b, n in zip(lo, hi, mod.shape))
    origin = np.asarray([s.start for s in fbox], dtype=np.float64)
    values = sample_trilinear(filled(fld[fbox], valid[fbox]), index - origin).astype(np.float32)
    lim = symmetric_limits(values) if limits is None else (float(limits[0]), float(limits[1]))
    report(progress, cancel, 3, 3)
    return ColouredSurface(
        vertices=(index * v).astype(np.float32),
        faces=np.ascontiguousarray(faces, dtype=np.int32),
        values=values,
        limits=lim,
        field=field,
        unit=unit,
        level=level,
        threshold=float(threshold),
        voxel_size=tuple(float(x) for x in v),
    )


def field_unit(field: str, g_norm: float | None = None) -> str:
    """Unit of a field of a post-processed result: strain ``""``, displacement ``"nm"`` (``"d"`` when
    ``|G|`` was unknown: the displacement is then in lattice-plane spacings), phase ``"rad"``."""
    if field not in FIELDS:
        raise BCDIError(f"unknown field {field!r}: colour by one of {', '.join(FIELDS)}")
    return {"strain": "", "displacement": "nm" if g_norm is not None else "d", "phase": "rad"}[field]


def result_surface(result, field: str = "strain", threshold: float = 0.3, **kwargs) -> ColouredSurface:
    """:func:`coloured_isosurface` of a :class:`~.postprocess.StrainResult` coloured by one of :data:`FIELDS`."""
    if field not in FIELDS:
        raise BCDIError(f"unknown field {field!r}: colour by one of {', '.join(FIELDS)}")
    return coloured_isosurface(result.modulus, getattr(result, FIELDS[field]), threshold=threshold,
                               voxel_size=result.voxel_size, support=result.support, field=field,
                               unit=field_unit(field, result.g_norm), **kwargs)


# -------------------------------------------------------------------------------------------- slices
def centre_of_mass(modulus: np.ndarray, support: np.ndarray | None = None) -> np.ndarray:
    """Modulus-weighted centre of mass (index units, z y x) inside ``support`` (the whole array when None)."""
    mod = np.abs(_volume(modulus, "modulus")).astype(np.float64)
    mod = np.where(np.isfinite(mod), mod, 0.0)
    if support is not None:
        s = np.asarray(support)
        if s.shape != mod.shape:
            raise BCDIError(f"support has shape {s.shape}, the modulus {mod.shape}")
        mod = np.where(s != 0, mod, 0.0)
    total = mod.sum()
    if not total > 0:
        raise BCDIError("the modulus is zero inside the support: no centre of mass")
    return np.asarray(ndimage.center_of_mass(mod), dtype=np.float64)


@dataclass
class Slices:
    """Three orthogonal slices through a point, for each of several fields.

    Attributes
    ----------
    index : (z, y, x) voxel indices of the slicing planes (the centre of mass, rounded).
    centre : the centre of mass itself (index units, not rounded).
    voxel_size : (z, y, x) nm.
    planes : ``{field: (slice at z = index[0] (y, x), at y (z, x), at x (z, y))}``.
    """

    index: tuple[int, int, int]
    centre: tuple[float, float, float]
    voxel_size: tuple[float, float, float]
    planes: dict

    def extent(self, axis: int) -> tuple[float, float, float, float]:
        """matplotlib ``imshow`` extent (nm) of the slice normal to ``axis``: (left, right, bottom, top)."""
        rows, cols = [a for a in range(3) if a != axis]
        shape = next(iter(self.planes.values()))[axis].shape
        v = self.voxel_size
        return (-0.5 * v[cols], (shape[1] - 0.5) * v[cols], (shape[0] - 0.5) * v[rows], -0.5 * v[rows])


def com_slices(fields: dict, modulus: np.ndarray, support: np.ndarray | None = None,
               voxel_size: Sequence[float] = (1.0, 1.0, 1.0)) -> Slices:
    """The three orthogonal slices of every array of ``fields`` through the centre of mass of ``modulus``.

    Parameters
    ----------
    fields : ``{name: 3D array}`` (copies of the slices are kept).
    modulus, support : for the centre of mass (:func:`centre_of_mass`).
    voxel_size : (z, y, x) nm, for the extents.
    """
    com = centre_of_mass(modulus, support)
    shape = np.shape(modulus)
    idx = tuple(int(min(max(round(c), 0), n - 1)) for c, n in zip(com, shape))
    planes = {}
    for name, a in fields.items():
        a = _volume(a, name)
        if a.shape != tuple(shape):
            raise BCDIError(f"{name} has shape {a.shape}, the modulus {tuple(shape)}")
        planes[name] = (np.array(a[idx[0]]), np.array(a[:, idx[1]]), np.array(a[:, :, idx[2]]))
    return Slices(index=idx, centre=tuple(float(c) for c in com),
                  voxel_size=tuple(float(x) for x in _voxel(voxel_size)), planes=planes)
