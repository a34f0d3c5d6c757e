"""Datasets: layout, distributions, determinism, and an interrupted-then-resumed run (cancel and SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError, Cancelled
from napari_bcdi_dl.core.simulate import SHAPES, generate_dataset, iter_shards, load_dataset, read_manifest
from napari_bcdi_dl.core.simulate import datasets as D

REPO = Path(__file__).resolve().parents[3]


def _ft2(obj):
    f = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj.astype(np.complex128))))
    return np.abs(f) ** 2, np.angle(f)


def _same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for k in a:
        if k == "params":
            assert a[k] == b[k]
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_phase_set_layout_and_truth(tmp_path):
    m = generate_dataset("phase", tmp_path / "ph", n=5, size=32, seed=7, workers=1, shard_size=2)
    assert m["complete"] and m["n_shards"] == 3 and sorted(m["shards"]) == [D.shard_name(i) for i in range(3)]
    data = load_dataset(tmp_path / "ph")
    dtypes = {
        "intensity": np.float32,
        "expected": np.float32,
        "phase": np.float32,
        "support": np.uint8,
        "obj": np.complex64,
    }
    for k, t in dtypes.items():
        assert data[k].shape == (5, 32, 32, 32) and data[k].dtype == t, k
    np.testing.assert_array_equal(data["index"], np.arange(5))
    assert len(data["params"]) == 5
    for j, prm in enumerate(data["params"]):
        assert prm["seed"] == {"dataset_seed": 7, "index": j}
        i_ref, phi_ref = _ft2(data["obj"][j])
        np.testing.assert_allclose(data["expected"][j], i_ref, atol=2e-6 * i_ref.max())
        strong = i_ref > 1e-5 * i_ref.max()
        assert np.abs(np.angle(np.exp(1j * (data["phase"][j][strong] - phi_ref[strong])))).max() < 1e-3
        assert 0 <= prm["phase_range"] <= 5 * np.pi + 1e-9
        assert all(2 <= o <= 5 for o in prm["oversampling"])
        assert 1e4 <= prm["max_counts"] <= 1e8
        assert data["intensity"][j].max() > 0 and np.all(
            data["intensity"][j] == np.round(data["intensity"][j])
        )
    # the shard files carry their own description
    with h5py.File(tmp_path / "ph" / D.shard_name(0)) as f:
        assert (
            f.attrs["kind"] == "phase" and f.attrs["count"] == 2 and f["intensity"].chunks == (1, 32, 32, 32)
        )


def test_inpaint_set_layout(tmp_path):
    generate_dataset("inpaint", tmp_path / "in", n=6, size=64, seed=1, workers=1, shard_size=4)
    data = load_dataset(tmp_path / "in")
    assert data["patches"].shape == data["expected"].shape == data["mask"].shape == (6, 32, 32, 32)
    assert data["mask"].dtype == np.uint8
    for j in range(6):
        prm = data["params"][j]
        gap = prm["patch_gap"]
        assert gap["kind"] in ("line", "cross")
        assert all(1 <= w <= 12 for _, _, w in gap["slabs"])
        assert data["mask"][j].sum() > 0
        assert all(0 <= o <= 32 for o in prm["patch_origin"])
        # the patch is the crop of its pattern, redrawn from the seeds
        pat = D.draw_inpaint_pattern(64, D.sample_seed(1, "inpaint", j))
        o = prm["patch_origin"]
        np.testing.assert_array_equal(
            data["expected"][j], pat.expected[o[0] : o[0] + 32, o[1] : o[1] + 32, o[2] : o[2] + 32]
        )
    # one set of arrays only: patches hold the complete counts (the truth under the gap)
    assert data["patches"][data["mask"] == 1].sum() > 0


def test_inpaint_patches_per_pattern_share_the_pattern():
    pat = D.draw_inpaint_pattern(128, D.sample_seed(0, "inpaint", 0))
    a = D.crop_inpaint_sample(pat, D.sample_seed(0, "inpaint", 0, stream=1))
    b = D.crop_inpaint_sample(pat, D.sample_seed(0, "inpaint", 1, stream=1))
    assert a["params"]["shape"] == b["params"]["shape"]
    assert a["params"]["patch_origin"] != b["params"]["patch_origin"] or not np.array_equal(
        a["mask"], b["mask"]
    )


def test_dataset_distributions():
    """The drawing rules, on many draws of the (cheap) parameter draws."""
    rng = np.random.default_rng(0)
    draws = [D._draw_pattern_kwargs(rng, D.PHASE_RANGES) for _ in range(4000)]
    pr = np.array([d["phase_range"] for d in draws])
    low = (pr < 2 * np.pi).mean()
    assert 0.17 < low < 0.23
    assert pr.max() <= 5 * np.pi and pr.min() >= 0
    os_ = np.array([d["oversampling"] for d in draws])
    assert os_.min() >= 2 and os_.max() <= 5
    counts = np.log10([d["max_counts"] for d in draws])
    assert counts.min() >= 4 and counts.max() <= 8
    assert {d["shape"] for d in draws} == set(D.PHASE_RANGES["shapes"])
    assert all(d["field"] != "screw" for d in draws if d["phase_range"] < 2 * np.pi)
    gaps = [D._patch_gap(rng, D.INPAINT_RANGES) for _ in range(4000)]
    cross = np.mean([g.kind == "cross" for g in gaps])
    assert 0.17 < cross < 0.23
    assert {w for g in gaps for _, _, w in g.slabs} == set(range(1, 13))
    for g in gaps:
        for axis, start, width in g.slabs:
            assert 0 <= start and start + width <= 32 and width >= 1
    # patches: mostly away from the peak centre, some near it
    where = [
        D._patch_origin(np.ones((64, 64, 64), np.float32) * 100, rng, D.INPAINT_RANGES)[1]
        for _ in range(2000)
    ]
    assert 0.20 < where.count("near") / len(where) < 0.30
    assert where.count("away") / len(where) > 0.7


def test_parallel_and_serial_runs_are_identical(tmp_path):
    generate_dataset("inpaint", tmp_path / "s", n=8, size=32, seed=3, workers=1, shard_size=3)
    generate_dataset("inpaint", tmp_path / "p", n=8, size=32, seed=3, workers=2, shard_size=2)
    _same(load_dataset(tmp_path / "s"), load_dataset(tmp_path / "p"))


def test_cancelled_then_resumed_run_is_complete_and_identical(tmp_path):
    ref = tmp_path / "ref"
    generate_dataset("phase", ref, n=8, size=32, seed=9, workers=1, shard_size=2)
    out = tmp_path / "cut"
    token = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done >= 3:  # in the second shard: cancel while it is being written
            token.set()

    with pytest.raises(Cancelled):
        generate_dataset(
            "phase", out, n=8, size=32, seed=9, workers=1, shard_size=2, progress=progress, cancel=token
        )
    m = read_manifest(out)
    assert not m["complete"] and list(m["shards"]) == [D.shard_name(0)]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", D.shard_name(0)]  # no partial shard
    with pytest.raises(BCDIError, match="incomplete"):
        load_dataset(out)
    partial = load_dataset(out, allow_incomplete=True)
    assert partial["intensity"].shape[0] == 2
    generate_dataset("phase", out, n=8, size=32, seed=9, workers=2)  # resume, in parallel this time
    _same(load_dataset(ref), load_dataset(out))


def test_cancelled_parallel_run_leaves_whole_shards_only(tmp_path):
    token = threading.Event()

    def progress(done, total):
        if done >= 2:
            token.set()

    out = tmp_path / "par"
    with pytest.raises(Cancelled):
        generate_dataset(
            "inpaint", out, n=40, size=64, seed=4, workers=2, shard_size=4, progress=progress, cancel=token
        )
    m = read_manifest(out)
    assert not m["complete"]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["manifest.json", *m["shards"]])  # no partial shard, nothing unrecorded
    generate_dataset("inpaint", out, n=40, size=64, seed=4, workers=1, shard_size=4)
    data = load_dataset(out, keys=["patches", "index"])
    np.testing.assert_array_equal(data["index"], np.arange(40))
    s = D.crop_inpaint_sample(
        D.draw_inpaint_pattern(64, D.sample_seed(4, "inpaint", 37)), D.sample_seed(4, "inpaint", 37, stream=1)
    )
    np.testing.assert_array_equal(data["patches"][37], s["patches"])


def test_killed_process_then_resumed_run_is_complete_and_identical(tmp_path):
    """SIGKILL of a real `bcdi-dl dataset` process mid-run, then the same command again."""
    out = tmp_path / "killed"
    args = [
        sys.executable,
        "-m",
        "napari_bcdi_dl.cli",
        "dataset",
        "phase",
        str(out),
        "--n",
        "24",
        "--size",
        "64",
        "--seed",
        "5",
        "--workers",
        "1",
        "--shard-size",
        "3",
        "--quiet",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            mf = out / "manifest.json"
            if mf.exists():
                try:
                    if len(json.loads(mf.read_text())["shards"]) >= 1:
                        break
                except ValueError:
                    pass
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    m = read_manifest(out)
    assert not m["complete"] and 1 <= len(m["shards"]) < 8
    for name in m["shards"]:  # every recorded shard is whole and readable
        with h5py.File(out / name) as f:
            assert f["intensity"].shape == (3, 64, 64, 64) and np.all(f["intensity"][-1].max() > 0)
    r = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr
    assert not [p for p in os.listdir(out) if p.endswith(".part.h5")]
    resumed = load_dataset(out, keys=["intensity", "phase", "params"])
    assert resumed["intensity"].shape[0] == 24
    # identical to the same samples drawn directly from their seeds
    for j in (0, 10, 23):
        s = D.draw_phase_sample(64, D.sample_seed(5, "phase", j))
        np.testing.assert_array_equal(resumed["intensity"][j], s["intensity"])
        np.testing.assert_array_equal(resumed["phase"][j], s["phase"])


def test_resume_with_other_parameters_is_refused(tmp_path):
    generate_dataset("inpaint", tmp_path / "d", n=2, size=32, seed=0, workers=1)
    with pytest.raises(BCDIError, match="resume it with the same arguments"):
        generate_dataset("inpaint", tmp_path / "d", n=3, size=32, seed=0, workers=1)
    with pytest.raises(BCDIError, match="resume it with the same arguments"):
        generate_dataset("phase", tmp_path / "d", n=2, size=32, seed=0, workers=1)
    # same arguments: nothing to do, still complete
    assert generate_dataset("inpaint", tmp_path / "d", n=2, size=32, seed=0, workers=1)["complete"]


def test_overrides_are_recorded_and_must_match_on_resume(tmp_path):
    over = {"shapes": ["rounded"], "low_strain_fraction": 1.0, "gap_through_peak_fraction": 1.0}
    m = generate_dataset("inpaint", tmp_path / "r", n=3, size=64, seed=0, workers=1, overrides=over)
    assert m["overrides"] == over and m["ranges"]["shapes"] == ["rounded"]
    shards = list(iter_shards(tmp_path / "r", keys=["params", "mask"]))
    params = [p for shard in shards for p in shard["params"]]
    assert {p["shape"] for p in params} == {"rounded"} and all(p["phase_range"] < 2 * np.pi for p in params)
    for p in params:  # the gap planes hold the pattern centre (32 of the 64³ pattern), ±1 voxel
        assert p["patch_position"] == "gap_through_peak"
        for axis, start, width in p["patch_gap"]["slabs"]:
            centre = p["patch_origin"][axis] + start + width / 2
            assert abs(centre - 32) <= 1.5, (p["patch_origin"], p["patch_gap"])
    with pytest.raises(BCDIError, match="resume it with the same arguments"):
        generate_dataset("inpaint", tmp_path / "r", n=3, size=64, seed=0, workers=1)
    default = generate_dataset("inpaint", tmp_path / "d", n=2, size=32, seed=0, workers=1)
    assert "overrides" not in default and default["ranges"]["shapes"] == list(SHAPES)
    # no override draws nothing more: the default sets keep their random streams
    same = generate_dataset("inpaint", tmp_path / "z", n=2, size=32, seed=0, workers=1,
                            overrides={"gap_through_peak_fraction": 0.0})
    a, b = (next(iter_shards(tmp_path / d, keys=["patches"]))["patches"] for d in ("d", "z"))
    assert same["overrides"] == {"gap_through_peak_fraction": 0.0} and np.array_equal(a, b)


def test_edge_sigma_override_draws_sharper_crystals(tmp_path):
    """``edge_sigma`` replaces the edge-width range: every pattern's edge is drawn inside it."""
    m = generate_dataset("inpaint", tmp_path / "e", n=4, size=32, seed=0, workers=1,
                         overrides={"edge_sigma": (0.0, 0.2)})
    assert m["overrides"] == {"edge_sigma": [0.0, 0.2]} and m["ranges"]["edge_sigma"] == [0.0, 0.2]
    params = [p for shard in iter_shards(tmp_path / "e", keys=["params"]) for p in shard["params"]]
    assert len(params) == 4 and all(0.0 <= p["edge_sigma"] <= 0.2 for p in params)


def test_gap_peak_offset_puts_the_gaps_beside_the_peak(tmp_path):
    """``gap_peak_offset`` (``--gap-peak-offset``): the through-peak patches' gaps lie beside the pattern
    centre, their near edge within the range, on both sides."""
    over = {"shapes": ["rounded"], "gap_through_peak_fraction": 1.0, "gap_peak_offset": (2, 10)}
    m = generate_dataset("inpaint", tmp_path / "b", n=6, size=64, seed=3, workers=1, overrides=over)
    assert m["overrides"]["gap_peak_offset"] == [2, 10]
    params = [p for shard in iter_shards(tmp_path / "b", keys=["params"]) for p in shard["params"]]
    sides = set()
    for p in params:
        assert p["patch_position"] == "gap_beside_peak"
        for axis, start, width in p["patch_gap"]["slabs"]:
            first = p["patch_origin"][axis] + start
            last = first + width - 1
            near = first - 32 if first > 32 else 32 - last
            sides.add(first > 32)
            assert 2 <= near <= 10 or p["patch_origin"][axis] in (0, 32), (p["patch_origin"], p["patch_gap"])
    assert sides == {True, False}


def test_phase_range_low_override_draws_nearly_unstrained_crystals(tmp_path):
    """``phase_range_low`` (``--phase-range-low``): with every crystal low-strain, their phase ranges lie in
    the given range and the manifest records it."""
    over = {"low_strain_fraction": 1.0, "phase_range_low": (0.0, 1.0)}
    m = generate_dataset("inpaint", tmp_path / "p", n=5, size=32, seed=4, workers=1, overrides=over)
    assert m["ranges"]["phase_range_low"] == [0.0, 1.0] and m["overrides"]["phase_range_low"] == [0.0, 1.0]
    params = [p for shard in iter_shards(tmp_path / "p", keys=["params"]) for p in shard["params"]]
    assert len(params) == 5 and all(0.0 <= p["phase_range"] <= 1.0 for p in params)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(kind="images"), "unknown dataset kind"),
        ({"overrides": {"shapes": ["sphere"]}}, "unknown shape family sphere"),
        ({"overrides": {"low_strain_fraction": 2}}, "must be a fraction in"),
        ({"overrides": {"gap_width": [1, 3]}}, "cannot be overridden"),
        ({"overrides": {"edge_sigma": [0.5, 0.2]}}, "0 <= LO <= HI <= 3"),
        ({"overrides": {"edge_sigma": 0.2}}, "two widths LO HI"),
        ({"overrides": {"gap_peak_offset": [5, 2]}}, "0 <= LO <= HI <= 16"),
        ({"overrides": {"phase_range_low": [0, 7]}}, "0 <= LO <= HI <= 6.283 rad"),
        ({"overrides": {"phase_range_low": [0, float("nan")]}}, "low-strain phase range"),
        (dict(size=48), "not one of 32, 64, 128"),
        (dict(n=0), "at least 1"),
        (dict(shard_size=0), "at least 1"),
        (dict(seed=-1), "non-negative"),
        (dict(kind="phase", patches_per_pattern=2), "inpainting sets only"),
    ],
)
def test_bad_dataset_parameters(tmp_path, kw, match):
    args = {**dict(kind="inpaint", outdir=tmp_path / "x", n=2, size=32, seed=0, workers=1), **kw}
    with pytest.raises(BCDIError, match=match):
        generate_dataset(**args)


def test_not_a_dataset_folder(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("hello")
    with pytest.raises(BCDIError, match="not empty and holds no dataset manifest"):
        generate_dataset("inpaint", tmp_path / "busy", n=2, size=32, workers=1)
    with pytest.raises(BCDIError, match="holds no manifest.json"):
        list(iter_shards(tmp_path / "busy"))
