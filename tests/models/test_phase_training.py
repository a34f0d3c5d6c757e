"""Phase training: augmentations keep (intensity, phase) an exact pair, batches, curriculum, and a tiny
real run through ``bcdi-dl train phase`` that checkpoints, resumes and exports a loadable model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_bcdi_dl.core.reciprocal import log_normalise
from napari_bcdi_dl.core.simulate import generate_dataset, simulate_pattern
from napari_bcdi_dl.models.phase_training import (
    PhaseSet,
    apply_symmetry,
    centre_phase,
    noisy_input,
    strain_cap,
    symmetry,
    train_batches,
)


def _ft(a):
    return np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(a)))


def _ift(a):
    return np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(a)))


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("phase_sets")
    generate_dataset("phase", root / "train", 12, size=32, seed=5, workers=1)
    generate_dataset("phase", root / "val", 4, size=32, seed=6, workers=1)
    return root


def test_symmetries_keep_intensity_and_phase_an_exact_pair(rng):
    """Flipping/permuting the q axes of I and φ alike gives the pattern of a transformed object: the field
    √I'·e^{iφ'} inverse-transforms to a compact object with the same modulus values (up to a sub-voxel
    phase ramp from the even-grid flip)."""
    p = simulate_pattern(32, seed=3, phase_range=4 * np.pi, oversampling=3.0, noise=False)
    field = _ft(p.obj)
    intensity, phase = np.abs(field) ** 2, np.angle(field)
    for _ in range(6):
        perm, flips = symmetry(rng)
        i2, ph2 = apply_symmetry(intensity, perm, flips), apply_symmetry(phase, perm, flips)
        obj2 = _ift(np.sqrt(i2) * np.exp(1j * ph2))
        assert np.allclose(np.sort(np.abs(obj2).ravel()), np.sort(np.abs(p.obj).ravel()), atol=1e-3 * np.abs(p.obj).max())
        # and the pair is the pattern of that object
        assert np.allclose(np.abs(_ft(obj2)) ** 2, i2, rtol=1e-3, atol=1e-3 * i2.max())
    assert len({symmetry(rng) for _ in range(400)}) == 48


def _com(obj):
    w = np.abs(obj) ** 2
    return np.array([(w.sum(axis=tuple(j for j in range(3) if j != a)) * np.arange(w.shape[a])).sum() / w.sum()
                     for a in range(3)])


def test_centred_targets_put_the_object_at_the_centre():
    """The target phase is that of the object with its centre of mass at N//2: a translation of the
    crystal (invisible in the intensity) gives the same target; the twin stays centred."""
    p = simulate_pattern(32, seed=4, phase_range=3 * np.pi, oversampling=3.0, noise=False)
    targets = []
    for shift in [(0, 0, 0), (1, -1, 0), (0, 2, -1)]:
        field = _ft(np.roll(p.obj, shift, axis=(0, 1, 2)))
        ph = centre_phase(np.abs(field) ** 2, np.angle(field))
        obj = _ift(np.abs(field) * np.exp(1j * ph))
        assert np.allclose(_com(obj), 16, atol=0.05)
        targets.append(ph)
    w = np.log1p(np.abs(_ft(p.obj)) ** 2)
    from napari_bcdi_dl.models.wca import wca_numpy

    assert wca_numpy(targets[0], targets[1], w) < 1e-3 and wca_numpy(targets[0], targets[2], w) < 1e-3
    field = _ft(p.obj)
    twin = np.conj(field)  # the twin's field: same intensity, phase -φ
    ph_t = centre_phase(np.abs(twin) ** 2, np.angle(twin))
    assert wca_numpy(targets[0], ph_t, w) < 1e-3  # −φ of the centred object, up to the loss's sign


def test_noise_levels_and_curriculum(rng):
    e = np.zeros((8, 8, 8), np.float32)
    e[4, 4, 4], e[4, 4, 5] = 1.0, 0.5
    counts = noisy_input(e, rng, (3.0, 3.0))
    assert counts.max() == pytest.approx(1000, rel=0.2) and counts.dtype == np.float32
    assert strain_cap(0, 3.0, 15.0, 100) == 3.0 and strain_cap(50, 3.0, 15.0, 100) == 9.0
    assert strain_cap(10**6, 3.0, 15.0, 100) == 15.0 and strain_cap(0, 3.0, 15.0, 0) == 15.0


def test_batches_from_a_real_phase_set(tiny_sets, rng):
    data = PhaseSet([tiny_sets / "train"], 32)
    assert len(data) == 12 and data.phase.dtype == np.float16
    batches = train_batches(data, 4, rng, curriculum_start=float(np.sort(data.phase_range)[3]) + 1e-9,
                            curriculum_steps=10**9)
    x, y = next(batches)
    assert x.shape == (4, 32, 32, 32, 1) and y.shape == (4, 32, 32, 32, 2)
    assert 0 <= x.min() and x.max() <= 1 and np.allclose(y[..., 1], x[..., 0])
    assert np.all(np.abs(y[..., 0]) <= np.pi + 1e-3)
    # early in the curriculum only the 4 least strained samples are drawn: their phases are the targets
    low = np.argsort(data.phase_range)[:4]
    allowed = {np.sort(np.abs(data.phase[i].astype(np.float32)).ravel())[-50:].round(2).tobytes() for i in low}
    for b in range(4):
        assert np.sort(np.abs(y[b, ..., 0]).ravel())[-50:].round(2).tobytes() in allowed
    # larger sets than the grid are centre-cropped
    assert PhaseSet([tiny_sets / "train"], 16, max_samples=2).expected.shape == (2, 16, 16, 16)


@pytest.mark.slow
def test_train_phase_cli_checkpoints_resumes_and_exports(tiny_sets, tmp_path):
    from napari_bcdi_dl.cli import main
    from napari_bcdi_dl.models.registry import load_model

    out, export = tmp_path / "run", tmp_path / "w" / "phase_tiny.keras"
    common = ["train", "phase", "--data", str(tiny_sets / "train"), "--val", str(tiny_sets / "val"),
              "--out", str(out), "--export", str(export), "--batch", "2", "--steps-per-epoch", "2",
              "--base", "4", "--depth", "2", "--growth", "2", "--quiet"]
    assert main(common + ["--steps", "2"]) == 0
    state = json.loads((out / "checkpoints" / json.loads(json.dumps((out / "checkpoints" / "latest")
                                                                    .read_text().strip())) / "state.json").read_text())
    assert state["step"] == 2
    assert main(common + ["--steps", "4", "--resume"]) == 0
    log = json.loads((out / "log.json").read_text())
    assert [r["step"] for r in log] == [2, 4] and "val_wca" in log[-1]
    card = json.loads(export.with_suffix(".json").read_text())
    assert card["grid"] == 32 and card["kind"] == "phase" and "bcdi-dl train phase" in card["command"]
    model = load_model(str(export), fresh=True)
    assert model.input_shape == (None, 32, 32, 32, 1)
    assert export.stat().st_size < 2e6  # no optimizer state in the exported file
    x = log_normalise(simulate_pattern(32, seed=1).intensity)
    assert np.all(np.isfinite(np.asarray(model(x[None, ..., None]))))


def test_train_phase_norm_group_builds_group_normalisation(tiny_sets, tmp_path):
    """``--norm group`` (a lever of issue 17, item 3) trains a GroupNormalization network and says so in the
    card; the exported file loads and predicts."""
    from napari_bcdi_dl.cli import main
    from napari_bcdi_dl.models.registry import load_model

    export = tmp_path / "phase_gn.keras"
    argv = ["train", "phase", "--data", str(tiny_sets / "train"), "--val", str(tiny_sets / "val"),
            "--out", str(tmp_path / "run"), "--export", str(export), "--batch", "2", "--steps-per-epoch", "2",
            "--base", "4", "--depth", "2", "--growth", "2", "--norm", "group", "--steps", "2", "--quiet"]
    assert main(argv) == 0
    card = json.loads(export.with_suffix(".json").read_text())
    assert card["arch"]["norm"] == "group"
    model = load_model(str(export), fresh=True)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "GroupNormalization" in kinds and "BatchNormalization" not in kinds
    x = log_normalise(simulate_pattern(32, seed=1).intensity)
    assert np.all(np.isfinite(np.asarray(model(x[None, ..., None]))))


def _interrupt(folder):
    """Make a finished set look like one whose generation was cut after its first shard."""
    import json

    path = folder / "manifest.json"
    m = json.loads(path.read_text())
    first = min(m["shards"], key=lambda k: m["shards"][k]["start"])
    m["shards"] = {first: m["shards"][first]}
    m["complete"] = False
    path.write_text(json.dumps(m))
    return m["shards"][first]["count"]


def test_training_refuses_an_unfinished_set_unless_its_first_shards_cover_the_limit(tmp_path):
    """A dataset whose generation was cut trains on a fraction of what its command asked for: refused
    with the command that finishes it, for the phase and the inpainting sets alike; a limit that the
    completed shards cover reads the same samples as the finished set."""
    from napari_bcdi_dl.core.errors import BCDIError
    from napari_bcdi_dl.models.inpaint_training import load_patches
    from napari_bcdi_dl.models.phase_training import PhaseSet

    generate_dataset("phase", tmp_path / "p", 4, size=32, seed=5, workers=1, shard_size=2)
    generate_dataset("inpaint", tmp_path / "i", 4, size=32, seed=5, workers=1, shard_size=2)
    full_p, full_i = PhaseSet([tmp_path / "p"], 32), load_patches([tmp_path / "i"])
    kept = [_interrupt(tmp_path / d) for d in ("p", "i")]
    for load in (lambda n: PhaseSet([tmp_path / "p"], 32, max_samples=n),
                 lambda n: load_patches([tmp_path / "i"], limit=n)):
        for n in (None, 3):
            with pytest.raises(BCDIError, match=r"incomplete \(2 of 4 samples\).*same 'bcdi-dl dataset' command.*"
                                                  r"at most its first 2 samples"):
                load(n)
    assert kept == [2, 2]
    part_p = PhaseSet([tmp_path / "p"], 32, max_samples=2)
    part_i = load_patches([tmp_path / "i"], limit=2)
    np.testing.assert_array_equal(part_p.expected, full_p.expected[:2])
    np.testing.assert_array_equal(part_i["expected"], full_i["expected"][:2])
