"""The hostile corpus at the core level: one BCDIError of one line naming the file; can_read never raises."""

from __future__ import annotations

import pytest
from bcdi_test_files import hostile_corpus

from napari_bcdi_dl.core import io
from napari_bcdi_dl.core.errors import BCDIError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return hostile_corpus(tmp_path_factory.mktemp("hostile"))


CASES = [
    "truncated_hdf5",
    "hdf5_without_datasets",
    "cxi_without_data",
    "array_2d",
    "array_4d",
    "tiff_2d",
    "nan_counts",
    "inf_counts",
    "negative_counts",
    "empty_file.npz",
    "empty_file.cxi",
    "empty_file.npy",
    "mask_other_shape_npz",
    "mask_other_shape_cxi",
    "text_named_npz",
    "pickled_npy",
    "npz_two_stacks",
    "bliss_missing_lima_file",
    "bliss_several_scans_no_choice",
    "bliss_unknown_scan",
    "frames_of_two_shapes",
    "missing_file",
]

EXPECTED = {
    "truncated_hdf5": "truncated or corrupt",
    "hdf5_without_datasets": "without BCDI data",
    "cxi_without_data": "without BCDI data",
    "array_2d": "2 dimensions",
    "array_4d": "4 dimensions",
    "tiff_2d": "2 dimensions",
    "nan_counts": "NaN",
    "inf_counts": "infinite",
    "negative_counts": "negative counts",
    "empty_file.npz": "empty file",
    "empty_file.cxi": "empty file",
    "empty_file.npy": "empty file",
    "mask_other_shape_npz": "shape",
    "mask_other_shape_cxi": "shape",
    "text_named_npz": "not a NumPy .npz",
    "pickled_npy": "pickled",
    "npz_two_stacks": "several 3D arrays",
    "bliss_missing_lima_file": "missing",
    "bliss_several_scans_no_choice": "--scan",
    "bliss_unknown_scan": "no scan '7'",
    "frames_of_two_shapes": "frame shape",
    "missing_file": "no such",
}


def test_corpus_is_complete(corpus):
    assert set(corpus) == set(CASES) == set(EXPECTED)


@pytest.mark.parametrize("case", CASES)
def test_read_refuses_with_one_clear_line(corpus, case):
    path, kwargs = corpus[case]
    with pytest.raises(BCDIError) as info:
        io.read(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert EXPECTED[case] in message, message
    assert path.name in message, message


@pytest.mark.parametrize("case", CASES)
def test_can_read_never_raises(corpus, case):
    path, _ = corpus[case]
    assert io.can_read(path) in (True, False)
