"""``bcdi-dl inpaint``: real files in, real npz out (data float32 + mask), clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.cli import main


@pytest.fixture
def pattern(real_pattern):
    """The measured 64³ pattern with a 6-px gap line across the peak (gap voxels read 0)."""
    m = np.zeros(real_pattern.shape, np.uint8)
    m[:, 29:35, :] = 1
    data = real_pattern.copy()
    data[m == 1] = 0
    return data, m


@pytest.fixture
def files(tmp_path, pattern):
    data, m = pattern
    np.save(tmp_path / "scan.npy", data)
    np.save(tmp_path / "mask.npy", m)
    return tmp_path / "scan.npy", tmp_path / "mask.npy"


def _check(out, data, m):
    with np.load(out) as f:
        assert set(f.files) == {"data", "mask", "inpainted"}  # the method, read back by bcdi-dl phase
        filled, mask = f["data"], f["mask"]
        assert str(f["inpainted"]) in ("dl", "linear", "cubic", "nearest", "idw")
    assert filled.dtype == np.float32 and filled.shape == data.shape
    np.testing.assert_array_equal(mask, m)
    np.testing.assert_array_equal(filled[m == 0], data[m == 0])
    assert (filled[m == 1] > 0).any() and np.isfinite(filled).all()
    return filled


@pytest.mark.parametrize("method", ["linear", "cubic", "nearest", "idw"])
def test_baselines(files, pattern, tmp_path, method, capsys):
    data, m = pattern
    scan, mask = files
    before = scan.read_bytes()
    out = tmp_path / f"{method}.npz"
    assert main(["inpaint", str(scan), "--mask", str(mask), "--out", str(out), "--method", method,
                 "--quiet"]) == 0
    _check(out, data, m)
    assert scan.read_bytes() == before
    assert not list(tmp_path.glob(".*.part*"))
    assert f"({method})" in capsys.readouterr().out


def test_dl_with_the_shipped_model_is_the_library_call(files, pattern, tmp_path):
    from napari_bcdi_dl.models.inpaint import inpaint

    data, m = pattern
    scan, mask = files
    out = tmp_path / "dl.npz"
    assert main(["inpaint", str(scan), "--mask", str(mask), "--out", str(out), "--step", "8",
                 "--quiet"]) == 0
    filled = _check(out, data, m)
    np.testing.assert_array_equal(filled, inpaint(data, m, step=8))


def test_mask_stored_with_the_input_is_used(tmp_path, pattern):
    data, m = pattern
    np.savez(tmp_path / "scan.npz", data=data, mask=m)
    out = tmp_path / "out.npz"
    assert main(["inpaint", str(tmp_path / "scan.npz"), "--out", str(out), "--method", "linear",
                 "--quiet"]) == 0
    _check(out, data, m)


@pytest.mark.parametrize(
    "make_mask, match",
    [
        (lambda s: np.zeros(s, np.uint8), "empty"),
        (lambda s: np.ones(s, np.uint8), "every voxel"),
        (lambda s: np.zeros((s[0] - 1, s[1], s[2]), np.uint8), "shape"),
    ],
    ids=["empty", "all-ones", "wrong-shape"],
)
def test_bad_masks_exit_2_with_one_line(files, tmp_path, capsys, make_mask, match):
    scan, _ = files
    shape = np.load(scan).shape
    bad = tmp_path / "bad.npy"
    np.save(bad, make_mask(shape))
    out = tmp_path / "out.npz"
    assert main(["inpaint", str(scan), "--mask", str(bad), "--out", str(out), "--method", "linear"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bcdi-dl inpaint: error:") and match in err and "\n" not in err
    assert not out.exists()


def test_other_errors(files, tmp_path, capsys):
    scan, mask = files
    assert main(["inpaint", str(scan), "--out", str(tmp_path / "o.npz")]) == 2
    assert "--mask" in capsys.readouterr().err
    assert main(["inpaint", str(scan), "--mask", str(mask), "--out", str(scan.with_suffix(".npz")),
                 "--method", "linear", "--finetune"]) == 2
    assert "--finetune" in capsys.readouterr().err
    assert main(["inpaint", str(tmp_path / "missing.npy"), "--mask", str(mask),
                 "--out", str(tmp_path / "o.npz")]) == 2
    with pytest.raises(SystemExit):
        main(["inpaint", str(scan), "--mask", str(mask), "--out", "o.npz", "--method", "magic"])
