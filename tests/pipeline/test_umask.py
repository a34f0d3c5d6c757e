"""Outputs honour the umask (atomic writes go through mkstemp, which creates 0600 files)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from napari_bcdi_dl.core.io import write_npz
from napari_bcdi_dl.core.io.atomic import atomic_path, current_umask, output_mode
from napari_bcdi_dl.pipeline.config import load_config
from napari_bcdi_dl.pipeline.runner import run_scan

from .conftest import FAST_PHASE, write_config


@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)

    def set_to(value: int) -> None:
        os.umask(value)

    yield set_to
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077])
def test_atomic_outputs_get_the_mode_of_a_plain_open(tmp_path, umask, mask):
    umask(mask)
    assert current_umask() == mask
    with atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("x")
    write_npz(tmp_path / "b.npz", data=np.zeros(3))
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert _mode(tmp_path / "a.txt") == _mode(plain) == output_mode() == 0o666 & ~mask
    assert _mode(tmp_path / "b.npz") == 0o666 & ~mask


def test_pipeline_outputs_are_group_readable_under_umask_027(scan_dir, umask):
    umask(0o027)
    cfg = load_config(write_config(scan_dir, scans=["scan_a.npz"], phase=FAST_PHASE,
                                   export={"reconstruction": ["npz", "cxi"], "vti": True}))
    out = scan_dir / "res"
    result = run_scan(cfg, "scan_a.npz", out)
    files = list(out.iterdir())
    assert {p.name for p in files} >= {"reconstruction.npz", "reconstruction.cxi", "strain.npz", "strain.vti",
                                        "provenance.yaml", "log.txt"}
    assert all(_mode(p) == 0o640 for p in files), {p.name: oct(_mode(p)) for p in files}
    assert result.llk_free is not None
