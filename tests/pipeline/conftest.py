"""Fixtures of the pipeline tests: small simulated scans as real files, a real Dask LocalCluster."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml

#: a quick conventional phasing for 32³ scans
FAST_PHASE = {"method": "conventional", "recipe": "HIO**40, ER**30", "runs": 2}


@pytest.fixture(scope="session")
def patterns() -> list[np.ndarray]:
    """Four simulated 32³ Bragg patterns (Poisson counts), different crystals."""
    from napari_bcdi_dl.core.simulate import simulate_pattern

    return [simulate_pattern(32, seed=s, oversampling=3, max_counts=1e5, phase_range=1.5,
                             compute_phase=False, workers=1).intensity for s in range(4)]


def save_scan(path: Path, intensity: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, data=intensity)
    return path


@pytest.fixture
def scan_dir(tmp_path: Path, patterns) -> Path:
    """``scan_a.npz``, ``scan_b.npz`` and ``more/scan_c.npz`` in a fresh folder."""
    save_scan(tmp_path / "scan_a.npz", patterns[0])
    save_scan(tmp_path / "scan_b.npz", patterns[1])
    save_scan(tmp_path / "more" / "scan_c.npz", patterns[2])
    return tmp_path


def write_config(folder: Path, name: str = "config.yaml", **data) -> Path:
    path = Path(folder) / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def cluster():
    """A real 2-worker LocalCluster (processes, one thread each) shared by the batch tests."""
    from distributed import LocalCluster

    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                     silence_logs=logging.ERROR)
    try:
        yield c
    finally:
        c.close()
