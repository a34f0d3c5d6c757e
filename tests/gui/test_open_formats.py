"""A real napari viewer (Xvfb) opening every format with ``viewer.open(path, plugin="napari-bcdi-dl")``,
declining or reporting hostile files without crashing, and saving layers back with the plugin's writers.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from bcdi_test_files import (
    bliss_dataset,
    complex_object,
    edf_frames,
    hostile_corpus,
    pattern,
    pynx_data_cxi,
    pynx_result_cxi,
    tiff_frames,
    with_gap,
)

from napari_bcdi_dl._reader import get_reader
from napari_bcdi_dl.core import io

pytestmark = pytest.mark.gui
PLUGIN = "napari-bcdi-dl"


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def notes():
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    yield lambda: notification_manager.records[start:]


@pytest.fixture(scope="module")
def counts():
    return with_gap(pattern((12, 24, 20)), rows=(10, 12))


def test_every_intensity_format_opens_as_raw_counts(viewer, tmp_path, counts):
    mask = (counts == 0).astype(np.uint8)
    np.save(tmp_path / "a_npy.npy", counts)
    np.savez(tmp_path / "b_npz.npz", data=counts, mask=mask)
    tifffile.imwrite(tmp_path / "c_tiff.tif", counts)
    tiff_frames(tmp_path / "d_tif_frames", counts)
    edf_frames(tmp_path / "e_edf_frames", counts)
    pynx_data_cxi(tmp_path / "f_cxi.cxi", counts, mask)
    master = bliss_dataset(tmp_path / "bliss", {1: counts})
    paths = [
        tmp_path / n
        for n in ("a_npy.npy", "b_npz.npz", "c_tiff.tif", "d_tif_frames", "e_edf_frames", "f_cxi.cxi")
    ] + [master]
    for p in paths:
        layers = viewer.open(p, plugin=PLUGIN)
        image = layers[0]
        assert image._type_string == "image", p
        np.testing.assert_array_equal(image.data, counts.astype(np.float32))  # raw counts kept
        assert image.gamma == pytest.approx(0.2) and image.colormap.name == "magma"
        assert tuple(image.contrast_limits) == pytest.approx((0.0, float(counts.max())))
        assert image.metadata["bcdi"]["kind"] == "intensity"
    names = [layer.name for layer in viewer.layers]
    assert "a_npy" in names and "d_tif_frames" in names and "sample_0001 scan 1.1" in names
    masks = [layer for layer in viewer.layers if layer.name.endswith("gap mask")]
    assert [m.name for m in masks] == ["b_npz gap mask", "f_cxi gap mask"]
    for m in masks:
        assert m._type_string == "labels"
        np.testing.assert_array_equal(m.data, mask)
    bliss_layer = viewer.layers["sample_0001 scan 1.1"]
    assert bliss_layer.metadata["bcdi"]["geometry"].energy_kev == pytest.approx(9.0)
    viewer.dims.ndisplay = 3  # renders in 3D without error


def test_object_opens_as_modulus_phase_support(viewer, tmp_path):
    obj, sup = complex_object()
    layers = viewer.open(pynx_result_cxi(tmp_path / "rec.cxi", obj, sup), plugin=PLUGIN)
    assert [layer.name for layer in layers] == ["rec modulus", "rec phase", "rec support"]
    modulus, phase, support = layers
    np.testing.assert_allclose(modulus.data, np.abs(obj))
    np.testing.assert_allclose(phase.data, np.angle(obj), atol=1e-6)
    assert phase.colormap.name == "twilight"
    assert tuple(phase.contrast_limits) == pytest.approx((-np.pi, np.pi))
    assert support._type_string == "labels"
    np.testing.assert_array_equal(support.data, sup)
    assert tuple(modulus.scale) == pytest.approx((6.1, 6.1, 6.1))  # voxel size (nm) from image_size


def test_bliss_file_with_several_scans_opens_one_and_says_so(viewer, notes, tmp_path, counts):
    master = bliss_dataset(tmp_path, {1: counts, 2: counts})
    layers = viewer.open(master, plugin=PLUGIN)
    assert layers[0].name == "sample_0001 scan 1.1"
    assert any("holds 2 scans" in str(n.message) for n in notes())


def test_mask_file_opens_as_labels(viewer, tmp_path, counts):
    mask = (counts == 0).astype(np.uint8)
    io.write_npz(tmp_path / "gaps.npz", mask=mask)
    (layer,) = viewer.open(tmp_path / "gaps.npz", plugin=PLUGIN)
    assert layer._type_string == "labels" and layer.name == "gaps gap mask"
    np.testing.assert_array_equal(layer.data, mask)


def test_hostile_files_are_declined_or_reported(viewer, notes, tmp_path):
    corpus = hostile_corpus(tmp_path)
    declined, reported = [], []
    for case, (path, _kwargs) in corpus.items():
        reader = get_reader(str(path))
        if reader is None:
            declined.append(case)
            with pytest.raises(
                (ValueError, FileNotFoundError)
            ):  # napari refuses it itself; the viewer is fine
                viewer.open(path, plugin=PLUGIN)
            continue
        before = len(notes())
        n_layers = len(viewer.layers)
        viewer.open(path, plugin=PLUGIN)  # must not raise
        errors = [n for n in notes()[before:] if n.severity == "error"]
        assert len(errors) == 1, (case, [str(n.message) for n in notes()[before:]])
        assert path.name in str(errors[0].message), case
        if case != "bliss_several_scans_no_choice":
            assert len(viewer.layers) == n_layers, case
        reported.append(case)
    # the 2D images, the text file and foreign HDF5 are left to other readers; the rest are ours to explain
    assert {"array_2d", "tiff_2d", "text_named_npz", "hdf5_without_datasets", "missing_file"} <= set(declined)
    assert {
        "nan_counts",
        "negative_counts",
        "truncated_hdf5",
        "mask_other_shape_npz",
        "bliss_missing_lima_file",
    } <= set(reported)
    assert viewer.layers is not None


def test_get_reader_never_raises_on_odd_input(tmp_path):
    for odd in (None, 3, [], ["a", "b"], str(tmp_path / "x.npz"), str(tmp_path), b"\x00", object()):
        assert get_reader(odd) is None


def test_layers_save_back_through_the_writers(viewer, tmp_path, counts):
    mask = (counts == 0).astype(np.uint8)
    src = pynx_data_cxi(tmp_path / "in.cxi", counts, mask)
    image, labels = viewer.open(src, plugin=PLUGIN)
    viewer.layers.selection = {image}
    viewer.layers.save(str(tmp_path / "out.cxi"), selected=True, plugin=PLUGIN)
    back = io.read(tmp_path / "out.cxi")
    np.testing.assert_array_equal(back.data, counts.astype(np.float32))
    assert back.geometry.distance_m == pytest.approx(0.83)
    viewer.layers.selection = {labels}
    viewer.layers.save(str(tmp_path / "mask.npz"), selected=True, plugin=PLUGIN)
    np.testing.assert_array_equal(io.read_mask(tmp_path / "mask.npz", counts.shape), mask)
    viewer.layers.save(str(tmp_path / "mask.cxi"), selected=True, plugin=PLUGIN)
    np.testing.assert_array_equal(io.read_mask(tmp_path / "mask.cxi", counts.shape), mask)


def test_writers_direct(tmp_path, counts):
    from napari_bcdi_dl._writer import write_image, write_labels
    from napari_bcdi_dl.core.errors import BCDIError

    obj, sup = complex_object()
    assert write_image(str(tmp_path / "o.cxi"), obj, {"name": "o"}) == [str(tmp_path / "o.cxi")]
    loaded = io.read(tmp_path / "o.cxi")
    assert loaded.kind == "object" and loaded.support is not None
    np.testing.assert_array_equal(loaded.support, (np.abs(obj) > 0.2).astype(np.uint8))
    assert write_image(str(tmp_path / "i.npz"), counts, {}) == [str(tmp_path / "i.npz")]
    np.testing.assert_array_equal(io.read(tmp_path / "i.npz").data, counts.astype(np.float32))
    assert write_labels(str(tmp_path / "s.npz"), sup, {"metadata": {"bcdi": {"kind": "support"}}})
    with np.load(tmp_path / "s.npz") as f:
        assert f.files == ["support"]
    with pytest.raises(BCDIError, match="modulus of a reconstruction"):
        write_image(
            str(tmp_path / "m.npz"), np.abs(obj), {"name": "m", "metadata": {"bcdi": {"kind": "modulus"}}}
        )
    # a modulus layer that carries its ReconstructionResult saves the whole reconstruction
    from napari_bcdi_dl.core.types import Geometry, Reconstruction, ReconstructionResult
    from napari_bcdi_dl.widgets._layers import result_metadata

    res = ReconstructionResult(Reconstruction(obj, sup, llk=1.5, llk_free=1.7, method="dl"),
                               geometry=Geometry(energy_kev=9.0), voxel_size_nm=(10.0, 10.0, 10.0))
    write_image(str(tmp_path / "r.npz"), np.abs(obj), {"name": "r modulus", "metadata": result_metadata(res, "modulus")})
    back = io.read(tmp_path / "r.npz")
    np.testing.assert_array_equal(back.data, obj)
    np.testing.assert_array_equal(back.support, sup)
    assert io.reconstruction_from(back).llk_free == pytest.approx(1.7)
    src = tmp_path / "in.npz"
    np.savez(src, data=counts)
    with pytest.raises(BCDIError, match="is the input file"):
        write_image(str(src), counts, {"metadata": {"bcdi": {"kind": "intensity", "source": str(src)}}})
