"""The context model of the inpainting (issue 21, item 2): a second input with a coarse view of the
window's surroundings. Real shipped weights, real simulated sets, the real training entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.gaps import extract_context, extract_windows
from napari_bcdi_dl.models.inpaint import add_context, encode_context, has_context, inpaint, window_size
from napari_bcdi_dl.models.inpaint_training import augment, make_batch, random_gap_mask

from ._inpaint_helpers import fringe_pattern


def test_extract_context_is_the_block_mean_of_the_centred_region():
    rng = np.random.default_rng(0)
    d = rng.random((64, 70, 80)).astype(np.float32)
    keep = d.copy()
    origins = np.array([[16, 20, 30], [0, 0, 0], [32, 38, 48]])
    c = extract_context(d, origins, 32)
    assert c.shape == (3, 32, 32, 32) and c.dtype == np.float32
    z, y, x = origins[0] - 16
    region = d[z:z + 64, y:y + 64, x:x + 64]
    np.testing.assert_allclose(c[0], region.reshape(32, 2, 32, 2, 32, 2).mean(axis=(1, 3, 5)), rtol=1e-6)
    w = extract_windows(d, origins, 32)  # the central 16³ blocks are the window itself, halved
    np.testing.assert_allclose(c[:, 8:24, 8:24, 8:24],
                               w.reshape(3, 16, 2, 16, 2, 16, 2).mean(axis=(2, 4, 6)), rtol=1e-6)
    assert np.isnan(c[1, :8]).all() and np.isfinite(c[1, 8:, 8:, 8:]).all()  # outside the array: NaN
    gap = np.zeros(d.shape, np.uint8)
    gap[:, 35, :] = 1  # one row: the blocks holding it are invalid
    cg = extract_context(d, origins[:1], 32, invalid=gap)
    bad = ~np.isfinite(cg[0])
    assert bad[:, 15].all() and bad.any(axis=(0, 2)).sum() == 1  # region row 35 - 20 + 16 = 31: block 15
    assert np.array_equal(bad, np.isnan(cg[0])) and bad.sum() == 32 * 32
    np.testing.assert_array_equal(d, keep)
    with pytest.raises(BCDIError, match="outside"):
        extract_context(d, np.array([[40, 0, 0]]), 32)


def test_region_gap_is_the_window_gap_continued():
    for seed in range(40):
        a = random_gap_mask(np.random.default_rng(seed))
        m, big = random_gap_mask(np.random.default_rng(seed), region=64)
        np.testing.assert_array_equal(a, m)  # the same draws: the window's gap is unchanged
        np.testing.assert_array_equal(big[16:48, 16:48, 16:48], m)
        assert big.sum() > m.sum()  # the slabs go on beyond the window


def test_augmented_context_marks_the_gap_and_the_outside():
    e = fringe_pattern((32, 32, 32), 1e4, seed=1)
    ctx = extract_context(np.pad(e, 16, mode="edge"), np.array([[16, 16, 16]]), 32)[0]
    ctx[:4] = np.nan  # as if the pattern ended there
    rng = np.random.default_rng(3)
    noisy, truth, m, c = augment(e, np.zeros(e.shape, np.uint8), rng, context=ctx)
    assert noisy.shape == truth.shape == m.shape == c.shape == (32, 32, 32)
    bad = np.isnan(c)
    assert bad.sum() >= 4 * 32 * 32 and (c[~bad] >= 0).all()
    # every gap voxel of the window lies in an invalid block of the context's central part
    centre = bad[8:24, 8:24, 8:24].repeat(2, 0).repeat(2, 1).repeat(2, 2)
    assert centre[m.astype(bool)].all()
    (x, xc), y = make_batch(noisy[None], truth[None], m[None], context=c[None])
    assert x.shape == xc.shape == (1, 32, 32, 32, 2) and np.isfinite(xc).all()
    np.testing.assert_array_equal(xc[0, ..., 1], bad.astype(np.float32))


@pytest.fixture(scope="module")
def shipped_with_context():
    from napari_bcdi_dl.models.registry import load_model

    base = load_model("inpaint")
    return base, add_context(base)


def test_a_model_given_context_starts_as_the_shipped_one(shipped_with_context):
    """Zero-initialised context convolutions: the same fill as the shipped model, and every voxel
    outside the gap bit-identical to the input."""
    base, ctx = shipped_with_context
    assert has_context(ctx) and not has_context(base) and window_size(ctx) == 32
    d = np.random.default_rng(1).poisson(fringe_pattern((40, 64, 64), 1e5, seed=2)).astype(np.float32)
    gap = np.zeros(d.shape, np.uint8)
    gap[:, 30:34, :] = 1
    gap[:, :, 0:3] = 1  # a gap at the array border too
    a = inpaint(d, gap, model=base, step=8)
    b = inpaint(d, gap, model=ctx, step=8)
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(b[gap == 0], d[gap == 0])
    with pytest.raises(BCDIError, match="already has a context"):
        add_context(ctx)


def test_context_input_changes_the_prediction(shipped_with_context):
    _, ctx = shipped_with_context
    proj = [ly for ly in ctx.get_layer("inpainter_unet").layers if ly.name.startswith("ctx") and
            ly.name.endswith("_proj")]
    assert len(proj) == 2 and all(not np.any(w) for ly in proj for w in ly.get_weights())
    e = fringe_pattern((32, 32, 32), 1e4, seed=4)
    x = np.random.default_rng(0).random((1, 32, 32, 32, 2)).astype(np.float32)
    c = encode_context(e[None], np.zeros(1, np.float32), np.ones(1, np.float32) * 10)
    y0 = np.asarray(ctx.predict_on_batch([x, c]))
    old = [ly.get_weights() for ly in proj]
    try:
        for ly in proj:
            ly.set_weights([np.full_like(w, 0.01) for w in ly.get_weights()])
        y1 = np.asarray(ctx.predict_on_batch([x, c]))
    finally:
        for ly, w in zip(proj, old):
            ly.set_weights(w)
    assert np.abs(y1 - y0).max() > 1e-4


def test_train_inpaint_context_cli_from_the_shipped_weights(tmp_path, capsys):
    """``bcdi-dl train inpaint --context --init`` the shipped (context-free) model: the run starts from
    its predictions, writes a context model that loads back, and a set without context is refused."""
    from napari_bcdi_dl.cli import main
    from napari_bcdi_dl.core.simulate import generate_dataset
    from napari_bcdi_dl.models._keras import keras
    from napari_bcdi_dl.models.registry import model_path

    for name, seed in (("train", 1), ("val", 2)):
        generate_dataset("inpaint", tmp_path / name, n=4, size=64, seed=seed, workers=1)
    common = ["train", "inpaint", "--data", str(tmp_path / "train"), "--val", str(tmp_path / "val"),
              "--batch", "2", "--steps", "2", "--steps-per-epoch", "2", "--lr", "1e-7", "--quiet",
              "--init", str(model_path("inpaint"))]
    out = tmp_path / "exp" / "ctx.keras"
    assert main(common + ["--out", str(tmp_path / "a"), "--context", "--export", str(out)]) == 0
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["arch"]["context"] is True
    model = keras().saving.load_model(str(out), compile=False)
    assert has_context(model) and json.loads(out.with_suffix(".json").read_text())["arch"]["context"]
    capsys.readouterr()
    assert main(common + ["--out", str(tmp_path / "b"), "--init", str(out)]) == 2
    assert "is a context model; add --context" in capsys.readouterr().err
