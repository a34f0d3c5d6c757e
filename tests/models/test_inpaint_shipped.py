"""The shipped inpainting model: loads offline from the package and beats linear interpolation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_bcdi_dl.core.gaps import gap_pcc
from napari_bcdi_dl.models import registry
from napari_bcdi_dl.models.inpaint import inpaint


@pytest.fixture(scope="module")
def shipped():
    return registry.load_model("inpaint")


@pytest.fixture(scope="module")
def case():
    """A fixed simulated pattern never seen in training (its own seed), with a 6-px cross gap."""
    from napari_bcdi_dl.core.simulate import simulate_pattern

    p = simulate_pattern(64, seed=20240917, shape="wulff", field="gaussian_bumps", phase_range=3 * np.pi,
                         oversampling=(3.0, 3.5, 3.0), max_counts=1e6, noise=True, workers=1)
    m = np.zeros(p.intensity.shape, np.uint8)
    m[:, 29:35, :] = 1
    m[:, :, 30:36] = 1
    data = p.intensity.copy()
    data[m == 1] = 0
    return data, m, p.expected


def test_weights_ship_inside_the_package_with_a_card():
    path = registry.model_path("inpaint")
    assert path.parent == registry.WEIGHTS_DIR and path.suffix == ".keras"
    assert path.stat().st_size <= 25 * 2**20
    card = registry.model_card("inpaint")
    assert card["command"].startswith("bcdi-dl train inpaint")
    assert card["held_out"]["val_pcc"] > card["held_out"]["val_pcc_linear"]
    json.dumps(card)


def test_loads_offline_cached_and_fresh_copies(shipped, monkeypatch):
    import socket

    def no_network(*a, **k):
        raise AssertionError("the model must load without any network access")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert registry.load_model("inpaint") is shipped
    fresh = registry.load_model("inpaint", fresh=True)
    assert fresh is not shipped
    assert shipped.input_shape == (None, 32, 32, 32, 2) and shipped.output_shape == (None, 32, 32, 32, 1)


def test_unknown_model_is_a_clear_error():
    from napari_bcdi_dl.core.errors import BCDIError

    with pytest.raises(BCDIError, match="unknown model"):
        registry.load_model("nope")


def test_beats_linear_interpolation_on_a_fixed_simulated_case(shipped, case):
    data, m, expected = case
    dl = inpaint(data, m, model=shipped, step=8)
    lin = inpaint(data, m, method="linear")
    np.testing.assert_array_equal(dl[m == 0], data[m == 0])
    pcc_dl, pcc_lin = gap_pcc(dl, expected, m), gap_pcc(lin, expected, m)
    assert pcc_dl > pcc_lin, (pcc_dl, pcc_lin)
    err_dl = np.abs(np.log1p(dl) - np.log1p(expected))[m == 1].mean()
    err_lin = np.abs(np.log1p(lin) - np.log1p(expected))[m == 1].mean()
    assert err_dl < err_lin, (err_dl, err_lin)
