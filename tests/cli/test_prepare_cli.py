"""``bcdi-dl prepare`` and ``bcdi-dl aliens`` on real files; ``phase``, ``inpaint`` and ``info`` read the output."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.cli import main
from napari_bcdi_dl.core import io


@pytest.fixture(scope="module")
def case():
    from napari_bcdi_dl.core.simulate import simulate_pattern
    from napari_bcdi_dl.core.simulate.aliens import inject_aliens

    sp = simulate_pattern(48, seed=6, field="gaussian_bumps", phase_range=1.0, oversampling=3.0, max_counts=1e6,
                          compute_phase=False)
    ap = inject_aliens(sp.intensity, sp.expected, n=2, seed=8, intensity_range=(0.01, 0.2))
    return sp, ap


@pytest.fixture
def scan_file(tmp_path, case):
    """The pattern with its aliens, a dead pixel and a detector gap (rows 30-31), saved as a bare npz."""
    _sp, ap = case
    a = ap.intensity.copy()
    a[:, 26, 22] = 0
    a[:, 30:32, :] = 0
    path = tmp_path / "scan.npz"
    np.savez(path, data=a)
    return path


def _one_line_error(capsys, what: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bcdi-dl ") and ": error: " in err[0] and what in err[0], err


def test_prepare_then_phase_and_inpaint_read_it(scan_file, tmp_path, capsys, case):
    _sp, ap = case
    out = tmp_path / "prepared.cxi"
    before = scan_file.read_bytes()
    assert main(["prepare", str(scan_file), "--out", str(out), "--aliens", "auto", "--hot-pixels"]) == 0
    text = capsys.readouterr().out
    assert "crop: peak (24, 24, 24) -> shape (48, 48, 48)" in text
    assert "dead pixels: 1 masked" in text and "aliens: 2 of" in text and "hot pixels: 0 masked" in text
    assert scan_file.read_bytes() == before
    prepared = io.read(out)
    m = prepared.mask.astype(bool)
    assert m[:, 26, 22].all()
    assert (m & ap.mask.astype(bool)).sum() >= 0.9 * ap.mask.sum()

    rec = tmp_path / "rec.npz"
    assert main(["phase", str(out), "--out", str(rec), "--recipe", "HIO**20, ER**10", "--runs", "1"]) == 0
    assert io.read(rec).data.shape == (48, 48, 48)
    filled = tmp_path / "filled.npz"
    assert main(["inpaint", str(out), "--out", str(filled), "--method", "linear", "--quiet"]) == 0
    with np.load(filled) as f:
        assert f["data"].shape == (48, 48, 48) and (f["mask"] == prepared.mask).all()


def test_aliens_writes_a_mask_and_one_line_per_cluster(scan_file, tmp_path, capsys, case):
    _sp, ap = case
    out = tmp_path / "aliens.npz"
    assert main(["aliens", str(scan_file), "--out", str(out), "--eps", "1.8", "--min-samples", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    alien_lines = [ln for ln in lines if ln.endswith("-> alien")]
    assert len(alien_lines) == 2 and all(ln.startswith("cluster ") for ln in alien_lines)
    assert lines[-1].startswith(f"{out}: 2 alien clusters")
    assert io.is_mask_file(out)
    with np.load(out) as f:
        assert f.files == ["mask"] and f["mask"].dtype == np.uint8
        found = f["mask"].astype(bool)
    truth = ap.mask.astype(bool)
    assert (found & truth).sum() >= 0.9 * truth.sum() and (found & truth).sum() >= 0.9 * found.sum()


def _contrasts(lines: list[str]) -> dict[int, tuple[float, bool]]:
    """{label: (Friedel contrast, proposed)} of the one-line-per-cluster output."""
    import re

    out = {}
    for ln in lines:
        m = re.match(r"cluster (\d+): .*, Friedel contrast (\S+) decades, .*", ln)
        if m:
            out[int(m.group(1))] = (float(m.group(2)), ln.endswith("-> alien"))
    return out


def test_aliens_contrast_threshold(scan_file, tmp_path, capsys):
    from napari_bcdi_dl.core.aliens import DEFAULTS

    with pytest.raises(SystemExit):
        main(["aliens", "--help"])
    assert f"0 or off: no contrast test (default {DEFAULTS['contrast_threshold']})" in " ".join(
        capsys.readouterr().out.split())

    out = tmp_path / "aliens.npz"
    assert main(["aliens", str(scan_file), "--out", str(out), "--all"]) == 0
    default = _contrasts(capsys.readouterr().out.splitlines())
    aliens = {k: c for k, (c, alien) in default.items() if alien}
    assert len(aliens) == 2 and all(c >= DEFAULTS["contrast_threshold"] for c in aliens.values()), aliens
    with np.load(out) as f:
        n_default = int(f["mask"].sum())
    # a threshold between the two aliens' contrasts: the fainter-contrast one passes only at the lower one
    low, high = sorted(aliens, key=aliens.get)
    thr = (aliens[low] + aliens[high]) / 2
    assert main(["aliens", str(scan_file), "--out", str(out), "--all", "--contrast", f"{thr:.3f}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    raised = _contrasts(lines)
    assert raised[high] == (aliens[high], True) and raised[low] == (aliens[low], False)
    assert lines[-1].startswith(f"{out}: 1 alien clusters")
    with np.load(out) as f:
        assert 0 < int(f["mask"].sum()) < n_default
    # off (= 0): the same two aliens as the default on this pattern
    assert main(["aliens", str(scan_file), "--out", str(out), "--contrast", "off"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"{out}: 2 alien clusters")

    bad = tmp_path / "bad.npz"
    for value in ("-0.5", "high", "nan", "inf"):
        assert main(["aliens", str(scan_file), "--out", str(bad), "--contrast", value]) == 2
        _one_line_error(capsys, f"--contrast '{value}': the Friedel-contrast threshold is decades >= 0, "
                                "or 'off'")
    assert not bad.exists()


def test_info_reports_dead_pixels(scan_file, capsys):
    assert main(["info", str(scan_file)]) == 0
    out = capsys.readouterr().out
    assert "dead pixels (zero in every frame, neighbours count): 1;" in out
    assert "rows (axis 1) 30:32 (2 wide)" in out  # the gap rows are gaps, not dead pixels


def test_bad_input_is_one_line(scan_file, tmp_path, capsys):
    bad_mask = tmp_path / "mask.npz"
    np.savez(bad_mask, mask=np.zeros((48, 48, 47), np.uint8))
    assert main(["prepare", str(scan_file), "--out", str(tmp_path / "o.npz"), "--mask", str(bad_mask)]) == 2
    _one_line_error(capsys, "has shape (48, 48, 47) but the data have shape (48, 48, 48)")
    assert main(["prepare", str(scan_file), "--out", str(tmp_path / "o.npz"), "--bin", "1", "5", "1"]) == 2
    _one_line_error(capsys, "factor 5 does not divide the size 48 of axis 1")
    empty = tmp_path / "empty.npz"
    np.savez(empty, data=np.zeros((16, 16, 16), np.float32))
    assert main(["prepare", str(empty), "--out", str(tmp_path / "o.npz")]) == 2
    _one_line_error(capsys, "the pattern is empty")
    assert main(["aliens", str(empty), "--out", str(tmp_path / "a.npz")]) == 2
    _one_line_error(capsys, "the pattern is empty")
    assert main(["prepare", str(scan_file), "--out", str(tmp_path / "o.txt")]) == 2
    _one_line_error(capsys, "written as .npz or .cxi")
    assert not (tmp_path / "o.npz").exists()
