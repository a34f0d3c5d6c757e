"""Dislocation displacement fields: the phase winds by 2π g·b around the line, not at all when g·b = 0."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.simulate.datasets import load_dataset
from napari_bcdi_dl.core.simulate.defects_dataset import generate_defects_dataset
from napari_bcdi_dl.core.simulate.dislocations import (
    LABELS,
    Dislocation,
    dislocation_phase,
    draw_line_geometry,
    simulate_defect_pattern,
    winding,
)

N = 24


def _grid(n=N):
    axes = [np.arange(n, dtype=float) - n // 2] * 3
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def _loop(z: int, radius: int, centre=(N // 2, N // 2)):
    """A closed square loop of voxels of half-width ``radius`` in the plane z = const."""
    cy, cx = centre
    pts = []
    for x in range(cx - radius, cx + radius):  # bottom edge y = cy - r, x increasing
        pts.append((z, cy - radius, x))
    for y in range(cy - radius, cy + radius):
        pts.append((z, y, cx + radius))
    for x in range(cx + radius, cx - radius, -1):
        pts.append((z, cy + radius, x))
    for y in range(cy + radius, cy - radius, -1):
        pts.append((z, y, cx - radius))
    return pts


# A line along axis 0 through a point between voxels (never on a voxel of a loop). The tests compare the
# magnitude of the winding, its sign being the same on every loop and reversed with the loop.
LINE_POINT = np.array([0.0, 0.5, 0.5])
Z = np.array([1.0, 0.0, 0.0])
Y = np.array([0.0, 1.0, 0.0])
X = np.array([0.0, 0.0, 1.0])


@pytest.mark.parametrize("character, burgers, g, expected_turns", [
    ("screw", 0.5 * Z, 2 * Z, 1),          # g·b = 1
    ("screw", Z, 2 * Z, 2),                # g·b = 2: two turns
    ("edge", 0.5 * X, 2 * X, 1),           # b ⟂ line, g ∥ b
    ("edge", 0.5 * Y, -2 * Y, -1),         # sign follows g·b
    ("mixed", 0.5 * (X + Z), 2 * X, 1),    # 45° line: g·b = 1
    ("screw", 0.5 * Z, 2 * X, 0),          # g·b = 0: invisible (no phase at all)
    ("edge", 0.5 * X, 2 * Y, 0),           # g·b = 0: no winding (only the g·(b×t) term)
])
def test_phase_winds_by_g_dot_b(character, burgers, g, expected_turns):
    d = Dislocation(LINE_POINT, Z, burgers, character)
    phi = dislocation_phase(_grid(), [d], g)
    turns = []
    for z in (4, 12, 20):  # anywhere along the line
        for r in (3, 6, 9):  # any loop around it
            turns.append(winding(phi, _loop(z, r)) / (2 * np.pi))
    turns = np.array(turns)
    assert np.allclose(np.abs(turns), abs(expected_turns), atol=1e-6)
    assert len(set(np.sign(np.round(turns, 6)))) == 1  # one orientation everywhere
    # a loop that does not enclose the line never winds
    assert abs(winding(phi, _loop(12, 3, centre=(4, 4)))) < 1e-6
    if character == "screw" and expected_turns == 0:
        assert np.allclose(phi, 0)  # g ⟂ b: a screw dislocation is invisible


def test_reversed_loop_reverses_the_winding():
    d = Dislocation(LINE_POINT, Z, 0.5 * X, "edge")
    phi = dislocation_phase(_grid(), [d], 2 * X)
    loop = _loop(12, 5)
    assert winding(phi, loop) == pytest.approx(-winding(phi, loop[::-1]))
    assert abs(winding(phi, loop)) == pytest.approx(2 * np.pi)


@pytest.mark.parametrize("character", ["edge", "screw", "mixed"])
def test_fcc_line_geometry(character):
    rng = np.random.default_rng(3)
    for _ in range(10):
        b, t = draw_line_geometry(character, rng)
        assert np.linalg.norm(b) == pytest.approx(np.sqrt(2) / 2)  # ½<110>
        cos = abs(b @ t) / np.linalg.norm(b)
        assert cos == pytest.approx({"edge": 0.0, "screw": 1.0, "mixed": 0.5}[character], abs=1e-9)


@pytest.mark.parametrize("label", LABELS)
def test_simulated_pattern_is_visible_and_winds(label):
    p = simulate_defect_pattern(32, seed=11, label=label, noise=False)
    prm = p.params
    assert prm["label"] == label
    n_lines = {"none": 0, "edge": 1, "screw": 1}.get(label)
    if n_lines is not None:
        assert len(prm["lines"]) == n_lines
    else:
        assert len(prm["lines"]) in (1, 2)
    assert all(abs(gb) == 1 for gb in prm["g_dot_b"])  # visible lines only
    # the noise-free intensity is |FT(obj)|² with the stored object
    f = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(p.obj)))
    assert np.allclose(np.abs(f) ** 2, p.expected, rtol=1e-3, atol=1e-3 * p.expected.max())
    # the stored object winds by ±2π around each line, in the plane normal to it
    for line in prm["lines"]:
        c = np.array(line["point"]) + 16
        t = np.array(line["direction"])
        e1 = np.cross(t, [1.0, 0, 0] if abs(t[0]) < 0.9 else [0, 1.0, 0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(t, e1)
        ang = np.linspace(0, 2 * np.pi, 200, endpoint=False)
        pts = c + 2.5 * (np.cos(ang)[:, None] * e1 + np.sin(ang)[:, None] * e2)
        vals = np.array([ndimage.map_coordinates(p.obj.real, pts.T, order=1),
                         ndimage.map_coordinates(p.obj.imag, pts.T, order=1)])
        z = vals[0] + 1j * vals[1]
        if np.min(np.abs(z)) < 1e-3 * np.abs(p.obj).max():
            continue  # the loop leaves the crystal
        turns = np.sum(np.angle(np.roll(z, -1) * np.conj(z))) / (2 * np.pi)
        if len(prm["lines"]) == 1:
            assert abs(round(turns)) == 1 and abs(turns - round(turns)) < 0.05


def test_same_seed_same_pattern_and_bad_label():
    a = simulate_defect_pattern(32, seed=5, label="edge")
    b = simulate_defect_pattern(32, seed=5, label="edge")
    assert np.array_equal(a.intensity, b.intensity)
    with pytest.raises(BCDIError, match="unknown defect label"):
        simulate_defect_pattern(32, seed=5, label="twin")


def test_defects_dataset_is_balanced_and_resumable(tmp_path):
    out = tmp_path / "d"
    m = generate_defects_dataset(out, n=8, size=32, seed=4, shard_size=3, workers=1)
    assert m["complete"] and m["kind"] == "defects" and m["n_shards"] == 3
    d = load_dataset(out)
    assert d["intensity"].shape == (8, 32, 32, 32) and d["intensity"].dtype == np.float32
    assert d["label"].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert [p["label"] for p in d["params"]] == [LABELS[i % 4] for i in range(8)]
    # resuming after a lost shard regenerates exactly the same samples
    first = d["intensity"][3:6].copy()
    (out / "shard_00001.h5").unlink()
    generate_defects_dataset(out, n=8, size=32, seed=4, shard_size=3, workers=1)
    assert np.array_equal(load_dataset(out)["intensity"][3:6], first)
    with pytest.raises(BCDIError, match="same arguments"):
        generate_defects_dataset(out, n=9, size=32, seed=4, workers=1)


@pytest.mark.parametrize("axis", ["z", "x"])
def test_g_along_a_fixed_axis(axis):
    e = {"z": [1, 0, 0], "x": [0, 0, 1]}[axis]
    for label in ("edge", "screw"):
        p = simulate_defect_pattern(32, seed=8, label=label, ranges={"g_direction": axis}, noise=False)
        g = np.array(p.params["reflection"]["lab"])
        assert np.allclose(g / np.linalg.norm(g), e, atol=1e-9)
        assert all(abs(gb) == 1 for gb in p.params["g_dot_b"])
    with pytest.raises(BCDIError, match="G direction"):
        simulate_defect_pattern(32, seed=8, label="edge", ranges={"g_direction": "q"})
