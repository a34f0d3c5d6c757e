"""A uint32 scan is read straight into float32: the peak of traced memory is one float32 copy.

``tracemalloc`` sees numpy's buffers (numpy registers them) but not HDF5's internal C buffers; those are the
chunk cache and the 1 MiB type-conversion buffer, both bounded and independent of the scan size, since
``read_direct`` converts uint32 -> float32 inside HDF5. Reading the uint32 array first and converting it
afterwards would show here as a peak of 2x the output (uint32 and float32 are the same size).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import tifffile
from bcdi_test_files import bliss_dataset, pynx_data_cxi, tiff_frames

from napari_bcdi_dl.core import io

SHAPE = (48, 256, 256)  # 12 MiB as uint32 and as float32


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("mem")
    rng = np.random.default_rng(0)
    counts = rng.poisson(2.0, size=SHAPE).astype(np.uint32)
    np.save(d / "s.npy", counts)
    np.savez(d / "s.npz", data=counts)
    np.savez_compressed(d / "sc.npz", data=counts)
    tifffile.imwrite(d / "s.tif", counts)
    tiff_frames(d / "frames", counts)
    pynx_data_cxi(d / "s.cxi", counts)
    master = bliss_dataset(d / "bliss", {1: counts}, extra_counters=False)
    paths = {
        "npy": d / "s.npy",
        "npz": d / "s.npz",
        "npz-deflate": d / "sc.npz",
        "tiff": d / "s.tif",
        "frames": d / "frames",
        "cxi-gzip": d / "s.cxi",
        "bliss-vds-bitshuffle": master,
    }
    return paths


@pytest.mark.parametrize(
    "fmt", ["npy", "npz", "npz-deflate", "tiff", "frames", "cxi-gzip", "bliss-vds-bitshuffle"]
)
def test_peak_memory_is_one_float32_copy(files, fmt):
    out_bytes = int(np.prod(SHAPE)) * 4
    tracemalloc.start()
    try:
        loaded = io.read(files[fmt])
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded.data.dtype == np.float32 and loaded.data.shape == SHAPE
    assert loaded.data.nbytes == out_bytes
    extra = peak - out_bytes
    # one float32 copy, plus at most a few MiB of blocks/frames: far below a second copy (12 MiB)
    assert extra < 0.35 * out_bytes, (
        f"{fmt}: peak {peak / 2**20:.1f} MiB for a {out_bytes / 2**20:.0f} MiB scan"
    )
