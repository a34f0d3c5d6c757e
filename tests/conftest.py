"""Shared fixtures. GUI tests use napari's ``make_napari_viewer`` under Xvfb (pytest-xvfb)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BCDI_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the project's small real BCDI data (``../shared/data``); skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (a user checkout without ../shared)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def real_pattern(shared_data: Path) -> np.ndarray:
    """The measured 64³ pattern ``cdinn_exp_crop64.npz`` (float32 photon counts)."""
    path = shared_data / "cdinn_exp_crop64.npz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    with np.load(path) as f:
        return np.asarray(f["data"], dtype=np.float32)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
