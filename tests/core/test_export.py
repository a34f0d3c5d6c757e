"""Export round trips: cdiutils-like npz, VTI (parsed back with xml.etree + numpy), CXI via core.io.read."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from napari_bcdi_dl.core import io
from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.export import export_npz_cdiutils, export_vti
from napari_bcdi_dl.core.postprocess import StrainResult, postprocess
from napari_bcdi_dl.core.simulate import simulate_pattern
from napari_bcdi_dl.core.types import Reconstruction

VOXEL = (6.0, 5.0, 4.0)


@pytest.fixture(scope="module")
def sim():
    return simulate_pattern(size=32, seed=3, phase_range=2.0, noise=False)


@pytest.fixture(scope="module")
def result(sim) -> StrainResult:
    return postprocess(sim.obj, sim.support, voxel_size_nm=VOXEL, hkl=(1, 1, 1), lattice_nm=0.3912)


def _parse_vti(path):
    root = ET.parse(path).getroot()
    assert root.tag == "VTKFile" and root.get("type") == "ImageData"
    assert root.get("byte_order") == "LittleEndian" and root.get("header_type") == "UInt64"
    image = root.find("ImageData")
    ext = [int(v) for v in image.get("WholeExtent").split()]
    nx, ny, nz = ext[1] + 1, ext[3] + 1, ext[5] + 1
    spacing = tuple(float(v) for v in image.get("Spacing").split())
    arrays = {}
    for da in image.find("Piece").find("PointData").findall("DataArray"):
        dtype = {"Float32": "<f4", "UInt8": "u1"}[da.get("type")]
        if da.get("format") == "binary":
            raw = base64.b64decode(da.text.strip())
            nbytes = int(np.frombuffer(raw[:8], "<u8")[0])
            a = np.frombuffer(raw[8:], dtype)
            assert a.nbytes == nbytes
        else:
            a = np.array(da.text.split(), dtype=dtype)
        arrays[da.get("Name")] = a.reshape(nz, ny, nx)  # x fastest: the C order of (z, y, x)
    return arrays, spacing


def test_npz_cdiutils_keys_dtypes_values(tmp_path, result):
    before = {k: np.array(v) for k, v in result.arrays().items()}
    out = export_npz_cdiutils(tmp_path / "strain.npz", result)
    with np.load(out) as f:
        for key in ("amplitude", "phase", "displacement", "het_strain", "support", "voxel_size"):
            assert key in f.files
        np.testing.assert_array_equal(f["amplitude"], result.modulus)
        inside = result.support != 0  # phase, displacement and strain are NaN outside, as cdiutils writes them
        np.testing.assert_array_equal(f["phase"], np.where(inside, result.phase, np.nan))
        np.testing.assert_array_equal(f["displacement"], np.where(inside, result.displacement, np.nan))
        np.testing.assert_array_equal(f["het_strain"], np.where(inside, result.strain, np.nan))
        np.testing.assert_array_equal(f["support"], result.support)
        for key in ("amplitude", "phase", "displacement", "het_strain"):
            assert f[key].dtype == np.float32
        assert f["support"].dtype == np.uint8
        np.testing.assert_allclose(f["voxel_size"], VOXEL)
        assert f["voxel_size"].dtype == np.float64
        assert float(f["g_norm"]) == pytest.approx(result.g_norm)
        assert str(f["frame"]) == result.frame
    for k, v in result.arrays().items():  # input untouched
        np.testing.assert_array_equal(v, before[k])
    assert not list(tmp_path.glob(".*part*")), "no temporary file left behind"


@pytest.mark.parametrize("binary", [True, False])
def test_vti_round_trip(tmp_path, result, binary):
    out = export_vti(tmp_path / "strain.vti", result, binary=binary)
    arrays, spacing = _parse_vti(out)
    assert spacing == pytest.approx(VOXEL[::-1])  # VTK (x, y, z)
    assert set(arrays) == {"amplitude", "phase", "displacement", "het_strain", "support"}
    rtol = 0 if binary else 1e-7
    np.testing.assert_allclose(arrays["amplitude"], result.modulus, rtol=rtol)
    inside = result.support != 0  # NaN outside the support
    np.testing.assert_allclose(arrays["phase"], np.where(inside, result.phase, np.nan), rtol=rtol,
                               atol=0 if binary else 1e-12)
    np.testing.assert_allclose(arrays["het_strain"], np.where(inside, result.strain, np.nan), rtol=rtol,
                               atol=0 if binary else 1e-12)
    np.testing.assert_array_equal(arrays["support"], result.support)


def test_vti_orientation_follows_array_axes(tmp_path):
    """A ramp along the last numpy axis is VTK's x: the first ``nx`` values of the stream."""
    z, y, x = np.meshgrid(np.arange(3), np.arange(4), np.arange(5), indexing="ij")
    a = (100 * z + 10 * y + x).astype(np.float32)
    res = StrainResult(modulus=a, phase=a, displacement=a, strain=a, support=np.ones(a.shape, np.uint8),
                       voxel_size=(3.0, 2.0, 1.0))
    out = export_vti(tmp_path / "ramp.vti", res)
    image = ET.parse(out).getroot().find("ImageData")
    assert image.get("WholeExtent").split() == ["0", "4", "0", "3", "0", "2"]
    raw = base64.b64decode(image.find("Piece/PointData/DataArray").text.strip())
    np.testing.assert_array_equal(np.frombuffer(raw[8:], "<f4")[:5], [0, 1, 2, 3, 4])


def test_cxi_round_trip_of_the_reconstruction(tmp_path, sim):
    rec = Reconstruction(obj=sim.obj, support=sim.support, llk=0.5, llk_free=0.6, method="test",
                         meta={"voxel_size_nm": VOXEL})
    out = io.write_cxi_result(tmp_path / "rec.cxi", rec)
    loaded = io.read(out)
    assert loaded.kind == "object"
    np.testing.assert_allclose(loaded.data, sim.obj, rtol=1e-6)
    np.testing.assert_array_equal(loaded.support, sim.support)
    assert loaded.meta["voxel_size_nm"] == pytest.approx(VOXEL)


def test_bad_exports_raise_one_line_errors(tmp_path, result):
    with pytest.raises(BCDIError, match=r"\.npz"):
        export_npz_cdiutils(tmp_path / "x.h5", result)
    with pytest.raises(BCDIError, match=r"\.vti"):
        export_vti(tmp_path / "x.npz", result)
    with pytest.raises(BCDIError, match="StrainResult"):
        export_vti(tmp_path / "x.vti", {"modulus": result.modulus})
    with pytest.raises(BCDIError, match="does not exist"):
        export_vti(tmp_path / "missing" / "x.vti", result)
    src = tmp_path / "input.npz"
    np.savez(src, a=1)
    with pytest.raises(BCDIError, match="input file"):
        export_npz_cdiutils(src, result, protect=[src])
