"""Gap geometry, window planning/extraction/stitching and the gap PCC (core.gaps)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_bcdi_dl.core import gaps
from napari_bcdi_dl.core.errors import BCDIError, Cancelled

from ._gap_cases import N
from ._gap_cases import cross as _cross
from ._gap_cases import gaussian as _gaussian
from ._gap_cases import plane as _plane


# ------------------------------------------------------------------------------------------ geometry
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_line_gap_along_each_axis(axis):
    m = _plane((N, N, N), axis, 30, 36)
    (g,) = gaps.find_gaps(m)
    assert (g.axis, g.start, g.stop, g.width, g.partial) == (axis, 30, 36, 6, False)
    assert g.bounds[axis] == (30, 36)
    assert all(g.bounds[a] == (0, N) for a in range(3) if a != axis)
    assert g.n_voxels == 6 * N * N


def test_cross_of_unequal_widths():
    m = _cross(rows=(20, 23), cols=(40, 49))
    found = gaps.find_gaps(m)
    assert [(g.axis, g.start, g.stop) for g in found] == [(1, 20, 23), (2, 40, 49)]
    assert all(not g.partial for g in found)
    assert gaps.describe_gaps(found) == "rows 20-22 (3 px), cols 40-48 (9 px)"
    assert gaps.other_masked(m, found).sum() == 0


def test_gaps_touching_the_border_and_parallel_gaps():
    m = _plane((N, N, N), 1, 0, 4) | _plane((N, N, N), 1, 10, 12) | _plane((N, N, N), 2, 60, 64)
    found = gaps.find_gaps(m)
    assert [(g.axis, g.start, g.stop) for g in found] == [(1, 0, 4), (1, 10, 12), (2, 60, 64)]
    assert found[0].touches_border(m.shape) and found[2].touches_border(m.shape)
    assert not found[1].touches_border(m.shape)


def test_partial_planes_and_non_gaps():
    m = _plane((N, N, N), 1, 0, 3) | _plane((N, N, N), 2, 40, 45, _0=(10, 20))
    m[:, 50, 5] = 1  # a dead pixel over all frames: a line, not a plane
    m[3, 60, 60] = 1  # a hot pixel
    found = gaps.find_gaps(m)
    assert [(g.axis, g.start, g.stop, g.partial) for g in found] == [(1, 0, 3, False), (2, 40, 45, True)]
    assert found[1].bounds == ((10, 20), (0, N), (40, 45))
    other = gaps.other_masked(m, found)
    assert other.sum() == N + 1
    two_pieces = _plane((N, N, N), 2, 30, 33, _1=(0, 20)) | _plane((N, N, N), 2, 30, 33, _1=(40, 64))
    found = gaps.find_gaps(two_pieces)
    assert [g.bounds[1] for g in found] == [(0, 20), (40, 64)]


def test_find_gaps_empty_and_bad_input():
    assert gaps.find_gaps(np.zeros((8, 8, 8))) == []
    with pytest.raises(BCDIError):
        gaps.find_gaps(np.zeros((8, 8)))


# ------------------------------------------------------------------------------------------- windows
@pytest.mark.parametrize(
    "mask",
    [
        _plane((N, N, N), 1, 30, 36),
        _plane((N, N, N), 0, 0, 5),
        _cross(rows=(20, 23), cols=(40, 49)),
        _plane((N, N, N), 2, 40, 45, _0=(10, 20)) | _plane((N, N, 80), 2, 0, 1)[:, :, :N],
        _plane((N, N, N), 1, 12, 52),  # 40 px: wider than a window
    ],
    ids=["line", "border", "cross", "partial", "wide"],
)
def test_windows_cover_every_gap_voxel(mask):
    size = 32
    o = gaps.window_origins(mask, size=size, step=4)
    assert o.ndim == 2 and o.shape[1] == 3 and o.dtype == np.int64
    assert o.min() >= 0 and np.all(o.max(axis=0) + size <= np.array(mask.shape))
    assert len(np.unique(o, axis=0)) == len(o)
    assert gaps.unreached(mask, o, size).sum() == 0
    assert np.all(gaps.coverage(o, mask.shape, size)[mask == 1] >= 1)


def test_windows_centred_on_gap_and_slid_with_step():
    m = _plane((N, N, N), 1, 30, 36)
    o = gaps.window_origins(m, size=32, step=4)
    assert set(o[:, 1]) == {17}  # gap 30-35 at window rows 13-18, centred on row 16
    assert sorted(set(o[:, 0])) == list(range(0, 33, 4)) and len(o) == 81
    assert len(gaps.window_origins(m, size=32, step=1)) == 33 * 33
    odd = gaps.window_origins(_plane((N, N, N), 2, 30, 35), size=32)
    assert set(odd[:, 2]) == {16}  # 5-px gap: window cols 14-18 around 16
    wide = gaps.window_origins(_plane((N, N, N), 1, 12, 52), size=32)
    assert len(set(wide[:, 1])) >= 2


def test_windows_cross_covers_both_arms_and_other_voxels():
    m = _cross()
    m[5, 5, 5] = 1
    o = gaps.window_origins(m, size=32, step=4)
    assert gaps.unreached(m, o, 32).sum() == 0
    o_no = gaps.window_origins(m, size=32, step=4, include_other=False)
    un = gaps.unreached(m, o_no, 32)
    assert un.sum() == 1 and un[5, 5, 5] == 1


def test_windows_on_array_smaller_than_window():
    m = _plane((20, 64, 64), 1, 30, 33)
    o = gaps.window_origins(m, size=32)
    assert o.shape == (0, 3)
    assert np.array_equal(gaps.unreached(m, o, 32), m)


def test_extract_windows_matches_slicing(rng):
    data = rng.random((40, 50, 45)).astype(np.float32)
    origins = np.array([[0, 0, 0], [8, 18, 13], [5, 3, 2]])
    w = gaps.extract_windows(data, origins, 32)
    assert w.shape == (3, 32, 32, 32) and w.dtype == np.float32
    for k, (z, y, x) in enumerate(origins):
        assert np.array_equal(w[k], data[z:z + 32, y:y + 32, x:x + 32])
    w[0] = -1
    assert data.min() >= 0  # a copy
    with pytest.raises(BCDIError, match="outside"):
        gaps.extract_windows(data, np.array([[9, 0, 0]]), 32)
    assert gaps.extract_windows(data, np.zeros((0, 3), np.int64), 32).shape == (0, 32, 32, 32)


def test_stitch_averages_overlaps_and_keeps_outside(rng):
    data = rng.random((N, N, N)).astype(np.float32)
    mask = _cross()
    o = gaps.window_origins(mask, 32, 4)
    windows = gaps.extract_windows(data, o, 32)
    total, count = gaps.stitch_windows(windows[..., None], o, data.shape, mask)
    assert count.dtype == np.int32 and count[mask == 0].sum() == 0 and total[mask == 0].sum() == 0
    assert np.allclose(total[mask == 1] / count[mask == 1], data[mask == 1], rtol=1e-6)
    # two overlapping constant windows: the overlap is their mean
    two = np.stack([np.full((32,) * 3, 1.0), np.full((32,) * 3, 3.0)])
    t2, c2 = gaps.stitch_windows(two, np.array([[0, 0, 0], [0, 16, 0]]), (32, 48, 32))
    avg = np.divide(t2, c2, out=np.zeros_like(t2), where=c2 > 0)
    assert np.all(avg[:, :16] == 1) and np.all(avg[:, 16:32] == 2) and np.all(avg[:, 32:] == 3)
    filled, unfilled = gaps.apply_stitched(np.zeros((32, 48, 32), np.float32), t2, c2, np.ones((32, 48, 32)))
    assert unfilled.sum() == 0 and filled.dtype == np.float32 and filled[0, 20, 0] == 2
    # weighted stitching and the unchanged-outside guarantee
    zeros = np.zeros_like(data)
    tw, cw = gaps.stitch_windows(windows, o, data.shape, mask, weight=np.full((32,) * 3, 0.5))
    out, un = gaps.apply_stitched(zeros + data, tw, cw, mask)
    assert np.array_equal(out[mask == 0], data[mask == 0]) and un.sum() == 0


def test_stitch_rejects_mismatch_and_cancels():
    with pytest.raises(BCDIError):
        gaps.stitch_windows(np.zeros((2, 32, 32, 32)), np.zeros((1, 3), np.int64), (32, 32, 32))
    token = threading.Event()
    token.set()
    with pytest.raises(Cancelled):
        gaps.stitch_windows(np.zeros((1, 8, 8, 8)), np.zeros((1, 3), np.int64), (8, 8, 8), cancel=token)


def test_gap_pcc():
    a = _gaussian()
    m = _cross()
    assert gaps.gap_pcc(a, a, m) == pytest.approx(1.0)
    assert gaps.gap_pcc(a, a[::-1], m) < 1.0
