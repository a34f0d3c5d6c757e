"""Crystal shapes: convex, one piece, and inside (and filling) the requested oversampling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import ConvexHull

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.simulate import SHAPES, simulate_pattern
from napari_bcdi_dl.core.simulate import shapes as S


def _extent(support: np.ndarray) -> list[int]:
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.nonzero(support.any(axis=other))[0]
        out.append(int(idx[-1] - idx[0] + 1))
    return out


@pytest.mark.parametrize("shape", SHAPES + S.EXTRA_SHAPES)
@pytest.mark.parametrize(
    "size,oversampling", [(64, (3.0, 2.5, 4.0)), (32, (2.0, 2.0, 2.0)), (128, (5.0, 3.2, 7.0))]
)
def test_shapes_compact_and_inside_requested_oversampling(shape, size, oversampling):
    for seed in range(3 if size < 128 else 1):
        p = simulate_pattern(
            size,
            seed=seed,
            shape=shape,
            field="random",
            phase_range=np.pi,
            oversampling=oversampling,
            noise=False,
        )
        sup = p.support.astype(bool)
        ext = _extent(sup)
        for n, os_, e in zip((size,) * 3, oversampling, ext):
            # inside the requested oversampling, and filling it (actual oversampling close to the request)
            assert e <= n / os_, (shape, seed, ext)
            assert e >= n / os_ - 3, (shape, seed, ext)  # sharp corners may miss a voxel centre each side
        # compact: one piece, no holes, convex on the grid
        _, n_parts = ndimage.label(sup)
        assert n_parts == 1
        assert np.array_equal(ndimage.binary_fill_holes(sup), sup)
        pts = np.argwhere(sup)
        lo, hi = pts.min(0), pts.max(0) + 1
        grid = np.argwhere(np.ones(tuple(hi - lo), bool)) + lo
        eq = ConvexHull(pts).equations
        in_hull = np.all(grid @ eq[:, :3].T + eq[:, 3] <= 1e-9, axis=1)
        outside = in_hull & ~sup[tuple(grid.T)]
        assert outside.sum() <= 0.02 * len(pts), (shape, seed, outside.sum(), len(pts))
        # the smoothed edge adds at most a few σ around the support
        ext_mod = _extent(np.abs(p.obj) > 0)
        margin = 2 * np.ceil(S.EDGE_CUT_SIGMAS * p.params["edge_sigma"]) + 2
        assert all(e <= n / os_ + margin for n, os_, e in zip((size,) * 3, oversampling, ext_mod))


def test_object_is_centred():
    p = simulate_pattern(64, seed=1, shape="hull", field="cosines", oversampling=3, noise=False)
    pts = np.argwhere(p.support)
    centre = (pts.min(0) + pts.max(0)) / 2
    assert np.all(np.abs(centre - 32) <= 1)


@pytest.mark.parametrize("kind", SHAPES)
def test_fit_to_box_gives_exact_extent(kind):
    rng = np.random.default_rng(3)
    poly = S.random_polyhedron(kind, rng)
    fitted = S.fit_to_box(poly, (20.0, 13.5, 30.25), S.random_rotation(rng))
    lo, hi = fitted.extent()
    np.testing.assert_allclose(hi - lo, (20.0, 13.5, 30.25), rtol=1e-9)
    np.testing.assert_allclose((hi + lo) / 2, 0, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(fitted.normals, axis=1), 1)


def test_signed_distance_is_the_distance_inside():
    cube = S.Polyhedron(S._N100.copy(), np.full(6, 5.0), kind="cube")
    pts = np.array([[0.0, 0, 0], [4.0, 0, 0], [0, -4.5, 1], [6.0, 0, 0]])
    np.testing.assert_allclose(S.signed_distance(cube, pts), [-5, -1, -0.5, 1], atol=1e-6)


def test_wulff_facets_are_fcc_families():
    w = S.wulff(d100=1.1, d110=1.2)
    assert len(w.normals) == 8 + 6 + 12
    # {111} facets at distance 1, {100} at 1.1
    n111 = np.isclose(np.abs(w.normals).sum(axis=1), np.sqrt(3))
    np.testing.assert_allclose(w.offsets[n111], 1.0)


def test_winterbottom_is_cut_by_substrate():
    w = S.winterbottom(cut=0.0)
    assert w.substrate is not None
    lo, hi = w.extent()
    full = S.wulff()
    flo, fhi = full.extent()
    assert np.prod(hi - lo) < np.prod(fhi - flo)


def test_unknown_shape_is_a_clear_error():
    with pytest.raises(BCDIError, match="unknown shape 'sphere'"):
        simulate_pattern(32, shape="sphere")


def test_rounded_goes_from_the_polyhedron_to_a_sphere():
    base = S.wulff(1.3, 1.1)
    r_base = np.linalg.norm(base.vertices(), axis=1)
    same = S.rounded(base, 0.0)
    r0 = np.linalg.norm(same.vertices(), axis=1)
    assert r0.max() == pytest.approx(r_base.max(), rel=1e-6), "roundness 0 keeps the corners"
    sphere = S.rounded(base, 1.0)
    r1 = np.linalg.norm(sphere.vertices(), axis=1)
    assert r1.max() / r1.min() < 1.03 and r1.min() == pytest.approx(base.offsets.min(), rel=0.02)
    half = np.linalg.norm(S.rounded(base, 0.5).vertices(), axis=1)
    assert r1.max() < half.max() < r_base.max(), "in between: the corners are cut"
    assert sphere.kind == "rounded" and sphere.params["base"] == "wulff"
    d = S.fibonacci_directions(50)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1)
    assert np.abs(d.mean(axis=0)).max() < 0.05, "spread over the sphere"
    with pytest.raises(BCDIError, match="roundness 1.5 must be in"):
        S.rounded(base, 1.5)


def test_extra_shapes_are_not_drawn_by_default():
    rng = np.random.default_rng(0)
    kinds = {S.random_polyhedron("random", rng).kind for _ in range(40)}
    assert kinds == set(SHAPES)
