"""Recipe grammar and backend selection."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.phasing import get_backend, parse_recipe, select_backend_name
from napari_bcdi_dl.core.phasing.backend import cupy_usable
from napari_bcdi_dl.core.phasing.recipe import format_recipe, total_iterations


def test_default_recipe_parses():
    steps = parse_recipe("HIO**400, RAAR**1000, ER**300")
    assert [(s.algorithm, s.n) for s in steps] == [("HIO", 400), ("RAAR", 1000), ("ER", 300)]
    assert all(s.support_period == 20 and s.beta == 0.9 and not s.positivity for s in steps)
    assert total_iterations(steps) == 1700


def test_settings_hold_until_changed():
    steps = parse_recipe("sup=50, HIO(0.7)**10, beta=0.8, raar**5, sup=off, pos=on, ER, border=on, ER**3")
    assert [(s.algorithm, s.n, s.beta, s.support_period, s.positivity, s.border_only) for s in steps] == [
        ("HIO", 10, 0.7, 50, False, False),
        ("RAAR", 5, 0.8, 50, False, False),
        ("ER", 1, 0.8, 0, True, False),
        ("ER", 3, 0.8, 0, True, True),
    ]
    # the canonical form parses back to the same steps
    assert parse_recipe(format_recipe(steps)) == steps


def test_hio_beta_keyword_and_detwin():
    steps = parse_recipe("HIO(beta=0.5)**2, DETWIN**20")
    assert steps[0].beta == 0.5 and steps[1].algorithm == "DETWIN"


@pytest.mark.parametrize(
    "bad, words",
    [
        ("", "empty"),
        ("HOI**10", "unknown algorithm"),
        ("HIO**x", "whole number"),
        ("HIO**0", "between 1"),
        ("HIO(1.5)**3", "beta"),
        ("sup=-1, ER**2", "sup"),
        ("foo=3, ER", "unknown setting"),
        ("ER**3,,HIO", "empty item"),
        ("sup=10", "no algorithm"),
    ],
)
def test_bad_recipes_are_one_line_errors(bad, words):
    with pytest.raises(BCDIError) as e:
        parse_recipe(bad)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_backend_selection_logic(monkeypatch):
    monkeypatch.delenv("BCDI_DL_BACKEND", raising=False)
    assert select_backend_name("auto", cupy_available=True) == "cupy"
    assert select_backend_name("auto", cupy_available=False) == "numpy"
    assert select_backend_name(None, cupy_available=False) == "numpy"
    assert select_backend_name("numpy", cupy_available=True) == "numpy"
    assert select_backend_name("cupy", cupy_available=True) == "cupy"
    with pytest.raises(BCDIError, match="CuPy"):
        select_backend_name("cupy", cupy_available=False)
    with pytest.raises(BCDIError, match="unknown phasing backend"):
        select_backend_name("tpu")
    monkeypatch.setenv("BCDI_DL_BACKEND", "numpy")
    assert select_backend_name("auto", cupy_available=True) == "numpy"
    monkeypatch.setenv("BCDI_DL_BACKEND", "gpu")
    with pytest.raises(BCDIError, match="BCDI_DL_BACKEND"):
        select_backend_name("auto", cupy_available=True)


def test_backend_here_is_numpy_and_ffts_in_place(monkeypatch):
    monkeypatch.delenv("BCDI_DL_BACKEND", raising=False)
    be = get_backend("auto")
    if cupy_usable():  # pragma: no cover - a GPU machine
        assert be.name == "cupy"
        return
    assert be.name == "numpy" and be.xp is np
    a = (np.random.default_rng(0).standard_normal((64, 64, 64)) + 0j).astype(np.complex64)
    ref = np.fft.fftn(a)
    b = be.fftn_(a)
    assert b.dtype == np.complex64 and np.shares_memory(a, b)  # in place
    np.testing.assert_allclose(b, ref, rtol=0, atol=1e-3 * np.abs(ref).max())
    c = be.ifftn_(b)
    assert np.shares_memory(a, c)


def test_insert_detwin():
    from napari_bcdi_dl.core.phasing.recipe import insert_detwin

    steps = insert_detwin(parse_recipe("HIO**400, RAAR**1000, ER**300"))
    assert [(s.algorithm, s.n) for s in steps] == [
        ("HIO", 100),
        ("DETWIN", 40),
        ("HIO", 260),
        ("RAAR", 1000),
        ("ER", 300),
    ]
    assert total_iterations(steps) == 1700
    short = parse_recipe("HIO**50, ER**50")
    assert insert_detwin(short) == short  # too short: unchanged
    own = parse_recipe("DETWIN**5, HIO**400")
    assert insert_detwin(own) == own
    split = insert_detwin(parse_recipe("HIO**60, RAAR**200"))
    assert [(s.algorithm, s.n) for s in split] == [("HIO", 60), ("RAAR", 40), ("DETWIN", 40), ("RAAR", 120)]
