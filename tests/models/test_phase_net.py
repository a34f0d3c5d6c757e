"""The phase U-Net: configurable structure, unbounded output, saves and loads without custom objects."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.models.phase import build_phase_net, level_widths, model_grid_size, predict_phase


def _layer_names(model) -> list[str]:
    return [layer.name for layer in model.layers]


def test_default_structure_dilated_first_blocks_skip_convs_transposed_decoder():
    model = build_phase_net()  # the shipped architecture at 32³
    assert model.input_shape == (None, 32, 32, 32, 1) and model.output_shape == (None, 32, 32, 32, 1)
    names = _layer_names(model)
    convs = {layer.name: layer for layer in model.layers if type(layer).__name__ == "Conv3D"}
    assert convs["enc0_conv1"].dilation_rate == (2, 2, 2) and convs["enc1_conv2"].dilation_rate == (3, 3, 3)
    assert any(n.startswith("skip0") for n in names) and any(n.startswith("skip2") for n in names)
    assert sum(type(layer).__name__ == "Conv3DTranspose" for layer in model.layers) >= 3
    last = model.layers[-1]
    assert last.name == "phase" and last.get_config()["activation"] == "linear"  # unbounded phase
    assert model.count_params() * 4 < 25e6  # float32 weights fit the 25 MB limit


def test_configurable_sizes_and_widths():
    m64 = build_phase_net(64, base=4, depth=2, stem="none", skip_convs=0, dilations=(1, 2), norm=None)
    assert model_grid_size(m64) == 64
    assert not any(n.startswith("skip") for n in _layer_names(m64))
    m = build_phase_net(32, widths=(4, 8, 16), depth=2)
    assert [layer.filters for layer in m.layers if layer.name.endswith("conv0") and
            layer.name.startswith(("enc", "bottleneck"))] == [4, 8, 16]
    assert level_widths(8, 3, 3.0) == [8, 24, 72, 216]
    with pytest.raises(BCDIError, match="multiple"):
        build_phase_net(36, depth=3)
    with pytest.raises(BCDIError, match="stem"):
        build_phase_net(32, stem="pixelshuffle")


def test_output_is_unbounded_and_predict_phase_checks_its_input(rng):
    model = build_phase_net(32, base=4, depth=2)
    big = model.get_layer("phase")
    w, b = big.get_weights()
    big.set_weights([w * 0, b * 0 + 7.0])  # a constant output of 7 rad passes through untouched
    x = rng.random((32, 32, 32)).astype(np.float32)
    out = predict_phase(model, x)
    assert out.shape == (32, 32, 32) and np.allclose(out, 7.0)
    assert predict_phase(model, np.stack([x, x])).shape == (2, 32, 32, 32)
    with pytest.raises(BCDIError, match="model grid"):
        predict_phase(model, x[:16])
    with pytest.raises(BCDIError, match="NaN"):
        predict_phase(model, np.full_like(x, np.nan))


def test_saves_and_loads_without_custom_objects(tmp_path, rng):
    from napari_bcdi_dl.models._keras import keras

    k = keras()
    model = build_phase_net(32, base=4, depth=2)
    x = rng.random((1, 32, 32, 32, 1)).astype(np.float32)
    path = tmp_path / "phase.keras"
    model.save(path)
    back = k.saving.load_model(path, compile=False)
    assert np.allclose(np.asarray(back(x, training=False)), np.asarray(model(x, training=False)), atol=1e-5)
