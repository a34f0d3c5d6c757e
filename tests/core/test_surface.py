"""The coloured isosurface and the slices through the centre of mass (core.surface), on planted fields."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.postprocess import StrainResult
from napari_bcdi_dl.core.surface import (
    centre_of_mass,
    coloured_isosurface,
    com_slices,
    result_surface,
    symmetric_limits,
)

VOXEL = (6.0, 5.0, 4.0)
SHAPE = (40, 44, 48)
CENTRE = (18.3, 23.6, 21.2)  # off the array centre


def _crystal(radii=(9, 11, 12), centre=CENTRE) -> np.ndarray:
    z, y, x = np.meshgrid(*[np.arange(n, dtype=float) for n in SHAPE], indexing="ij")
    r = ((z - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + ((x - centre[2]) / radii[2]) ** 2
    return ndimage.gaussian_filter((r <= 1).astype(np.float64), 1.0).astype(np.float32)


def _linear(coef=(2e-4, -1e-4, 3e-4), offset=1e-4) -> np.ndarray:
    """A planted linear field a + b·z + c·y + d·x (index units): trilinear interpolation of it is exact."""
    z, y, x = np.meshgrid(*[np.arange(n, dtype=float) for n in SHAPE], indexing="ij")
    return offset + coef[0] * z + coef[1] * y + coef[2] * x


def test_vertex_values_equal_the_planted_linear_field_at_the_vertices():
    mod = _crystal()
    coef, offset = (2e-4, -1e-4, 3e-4), -5e-4
    field = _linear(coef, offset)
    surf = coloured_isosurface(mod, field, threshold=0.3, voxel_size=VOXEL, unit="")
    assert surf.vertices.dtype == np.float32 and surf.faces.dtype == np.int32 and surf.values.dtype == np.float32
    assert surf.vertices.shape[1] == 3 and surf.faces.shape[1] == 3 and len(surf.values) == len(surf.vertices)
    assert surf.n_faces > 500 and surf.faces.max() < len(surf.vertices)
    index = surf.vertices / np.asarray(VOXEL)  # nm -> index units
    expected = offset + index @ np.asarray(coef)
    np.testing.assert_allclose(surf.values, expected, rtol=0, atol=1e-8)
    # the vertices lie on the isosurface: the modulus interpolated there is the level
    at = ndimage.map_coordinates(mod, index.T, order=1)
    np.testing.assert_allclose(at, surf.level, atol=0.02 * mod.max())
    assert surf.level == pytest.approx(0.3 * mod.max())


def test_nan_outside_the_support_does_not_leak_into_the_surface():
    mod = _crystal()
    field = _linear()
    support = ndimage.binary_dilation(mod >= 0.3 * mod.max(), iterations=2)
    masked = np.where(support, field, np.nan)
    surf = coloured_isosurface(mod, masked, threshold=0.3, voxel_size=VOXEL, support=support)
    assert np.isfinite(surf.values).all()
    np.testing.assert_allclose(surf.values, coloured_isosurface(mod, field, voxel_size=VOXEL).values, atol=1e-9)
    # a support tight to the surface: outside values come from the nearest support voxel, still finite
    tight = mod >= 0.5 * mod.max()
    s2 = coloured_isosurface(mod, np.where(tight, field, np.nan), threshold=0.3, voxel_size=VOXEL, support=tight)
    assert np.isfinite(s2.values).all()
    lo, hi = np.nanmin(field[tight]), np.nanmax(field[tight])
    assert lo - 1e-9 <= s2.values.min() and s2.values.max() <= hi + 1e-9


def test_colour_limits_are_symmetric_about_zero():
    mod = _crystal()
    surf = coloured_isosurface(mod, _linear(offset=2e-3), voxel_size=VOXEL)  # all positive values
    lo, hi = surf.limits
    assert lo == -hi and hi > 0
    assert hi == pytest.approx(np.percentile(np.abs(surf.values), 99.5))
    assert symmetric_limits(np.zeros(5))[1] > 0  # a flat field still has a usable range
    shared = coloured_isosurface(mod, _linear(), voxel_size=VOXEL, limits=(-1.0, 1.0))
    assert shared.limits == (-1.0, 1.0)


def test_vertices_are_in_nm_and_step_decimates():
    mod = _crystal(radii=(9, 9, 9), centre=(20, 22, 24))
    surf = coloured_isosurface(mod, _linear(), voxel_size=VOXEL)
    centre = surf.vertices.mean(axis=0) / np.asarray(VOXEL)
    np.testing.assert_allclose(centre, (20, 22, 24), atol=0.3)
    extent = np.ptp(surf.vertices, axis=0)
    assert extent[0] > extent[2]  # 6 nm voxels along z, 4 along x: the same sphere is longer in nm along z
    coarse = coloured_isosurface(mod, _linear(), voxel_size=VOXEL, step=2)
    assert coarse.n_faces < surf.n_faces / 2


def test_result_surface_units_and_fields():
    mod = _crystal()
    s = (mod >= 0.2 * mod.max()).astype(np.uint8)
    f = _linear().astype(np.float32)
    res = StrainResult(modulus=mod, phase=f * 100, displacement=f * 10, strain=f, support=s, voxel_size=VOXEL,
                       g_norm=26.7)
    assert (result_surface(res, "strain").unit, result_surface(res, "displacement").unit,
            result_surface(res, "phase").unit) == ("", "nm", "rad")
    np.testing.assert_allclose(result_surface(res, "phase").values, 100 * result_surface(res, "strain").values,
                               rtol=1e-5)
    res.g_norm = None
    assert result_surface(res, "displacement").unit == "d"
    with pytest.raises(BCDIError, match="colour by"):
        result_surface(res, "temperature")


def test_slices_pass_through_the_centre_of_mass():
    mod = _crystal()
    s = mod >= 0.1 * mod.max()
    com = centre_of_mass(mod, s)
    np.testing.assert_allclose(com, CENTRE, atol=0.1)
    field = _linear()
    sl = com_slices({"modulus": mod, "strain": field}, mod, s, VOXEL)
    assert sl.index == tuple(round(c) for c in CENTRE)
    iz, iy, ix = sl.index
    np.testing.assert_array_equal(sl.planes["strain"][0], field[iz])
    np.testing.assert_array_equal(sl.planes["strain"][1], field[:, iy])
    np.testing.assert_array_equal(sl.planes["modulus"][2], mod[:, :, ix])
    left, right, bottom, top = sl.extent(0)  # (y, x) plane, nm
    assert right - left == pytest.approx(SHAPE[2] * VOXEL[2]) and bottom - top == pytest.approx(SHAPE[1] * VOXEL[1])


def test_bad_input_is_one_line():
    mod = _crystal()
    for kwargs, match in (({"threshold": 1.2}, "threshold"), ({"voxel_size": (1, 0, 1)}, "voxel size"),
                          ({"step": 0}, "step")):
        with pytest.raises(BCDIError, match=match):
            coloured_isosurface(mod, _linear(), **kwargs)
    with pytest.raises(BCDIError, match="shape"):
        coloured_isosurface(mod, _linear()[:-1])
    with pytest.raises(BCDIError, match="zero everywhere"):
        coloured_isosurface(np.zeros(SHAPE), _linear())
    with pytest.raises(BCDIError, match="no valid value"):
        coloured_isosurface(mod, np.full(SHAPE, np.nan))
