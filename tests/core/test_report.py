"""The one-page report (core.report): valid PNG/PDF, written atomically, panels from real data."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_bcdi_dl.core import metrics
from napari_bcdi_dl.core.errors import BCDIError, Cancelled
from napari_bcdi_dl.core.postprocess import postprocess
from napari_bcdi_dl.core.report import default_provenance, slices_rgba, write_report
from napari_bcdi_dl.core.simulate import simulate_pattern
from napari_bcdi_dl.core.types import Geometry

VOXEL = (6.0, 5.0, 4.0)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sim():
    return simulate_pattern(size=32, seed=5, phase_range=2.0, max_counts=1e5)


@pytest.fixture(scope="module")
def result(sim):
    return postprocess(sim.obj, sim.support, voxel_size_nm=VOXEL, hkl=(1, 1, 1), lattice_nm=0.4078, unwrap=False)


def _history(n=200):
    return [{"iteration": i, "llk": 5.0 / (i + 1) + 0.5, "llk_free": 5.5 / (i + 1) + 0.55} for i in range(1, n, 10)]


def test_png_report_is_a_valid_image(tmp_path, sim, result):
    from PIL import Image

    prtf = metrics.prtf(sim.intensity, sim.obj, voxel_size=VOXEL)
    prov = default_provenance(source="/data/scan12.cxi", method="dl", recipe="HIO**200, ER**200",
                              geometry=Geometry(energy_kev=9.0, hkl=(1, 1, 1), lattice_nm=0.4078), llk=0.52,
                              llk_free=0.55)
    before = {k: np.array(v) for k, v in result.arrays().items()}
    out = write_report(tmp_path / "report.png", result, history=_history(), prtf=prtf, provenance=prov)
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC)
    with Image.open(out) as im:
        im.verify()
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 1500 and im.height > 1000  # an A4 page at 150 dpi
        rgb = np.asarray(im.convert("RGB"))
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 200, "a drawn page, not a blank one"
    assert not list(tmp_path.glob(".*.part*")), "no temporary file left"
    for k, v in result.arrays().items():  # the result is not modified
        np.testing.assert_array_equal(v, before[k])


def test_pdf_report_without_history_or_prtf(tmp_path, result):
    out = write_report(tmp_path / "report.pdf", result, provenance={"title": "bare result"})
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert len(data) > 10_000


def test_report_is_written_atomically(tmp_path, result):
    """A report stopped before its file is complete leaves the old file as it was and no temporary file."""
    target = tmp_path / "report.png"
    target.write_bytes(b"old report")
    cancel = threading.Event()

    def progress(done, total):
        if done >= 3:  # the page is drawn: the next step (inside atomic_path, before savefig) sees the cancel
            cancel.set()

    with pytest.raises(Cancelled):
        write_report(target, result, progress=progress, cancel=cancel)
    assert target.read_bytes() == b"old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.png"]


def test_bad_report_requests_are_one_line_errors(tmp_path, result):
    with pytest.raises(BCDIError, match=r"\.png or \.pdf"):
        write_report(tmp_path / "report.jpg", result)
    with pytest.raises(BCDIError, match="StrainResult"):
        write_report(tmp_path / "report.png", {"strain": result.strain})
    src = tmp_path / "input.png"
    src.write_bytes(b"input")
    with pytest.raises(BCDIError, match="input file"):
        write_report(src, result, protect=[src])
    assert src.read_bytes() == b"input"


def test_slice_panel_renders(result):
    rgba = slices_rgba(result, width_px=300, height_px=320)
    assert rgba.shape == (320, 300, 4) and rgba.dtype == np.uint8
    assert len(np.unique(rgba[..., :3].reshape(-1, 3), axis=0)) > 50
