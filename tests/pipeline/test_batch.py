"""``bcdi-dl batch`` on a real Dask LocalCluster: failures recorded, resumable, a killed worker survived."""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time

import numpy as np

from napari_bcdi_dl.cli import main
from napari_bcdi_dl.pipeline.batch import run_batch
from napari_bcdi_dl.pipeline.config import load_config

from .conftest import FAST_PHASE, save_scan, write_config


def _summary(out) -> dict[str, dict]:
    with open(out / "summary.csv", newline="") as fh:
        return {r["scan"]: r for r in csv.DictReader(fh)}


def _no_leftovers(out) -> None:
    hidden = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert not hidden, f"temporary folders left: {hidden}"


def test_a_corrupt_scan_among_good_ones(scan_dir, cluster, capsys):
    (scan_dir / "more" / "broken.npz").write_bytes(b"PK\x03\x04 truncated zip")
    cfg = write_config(scan_dir, scans=["scan_a.npz", "scan_b.npz", "more/*.npz"], phase=FAST_PHASE)
    out = scan_dir / "batch"
    rc = main(["batch", str(cfg), "--out", str(out), "--scheduler", cluster.scheduler_address])
    assert rc == 1
    cap = capsys.readouterr()
    rows = _summary(out)
    assert set(rows) == {"scan_a", "scan_b", "more_scan_c", "more_broken"}
    assert [rows[s]["status"] for s in ("scan_a", "scan_b", "more_scan_c")] == ["done"] * 3
    bad = rows["more_broken"]
    assert bad["status"] == "failed" and "broken.npz" in bad["error"] and "\n" not in bad["error"]
    assert "more_broken: failed:" in cap.err and "3 done, 1 failed" in cap.out
    for s in ("scan_a", "scan_b", "more_scan_c"):
        assert float(rows[s]["llk_free"]) > 0 and float(rows[s]["phase_s"]) > 0
        assert (out / s / "done.json").is_file() and (out / s / "thumbnail.png").is_file()
    assert (out / "more_broken" / "failed.json").is_file() and not (out / "more_broken" / "done.json").exists()
    html = (out / "summary.html").read_text()
    assert html.count("<tr>") == 5 and "scan_a/thumbnail.png" in html and "failed" in html
    # plain progress lines, not a bar, when stderr is not a terminal
    assert "batch: [4/4]" in cap.err
    _no_leftovers(out)


def test_resume_skips_finished_scans_and_redoes_half_written_ones(scan_dir, cluster):
    cfg = write_config(scan_dir, scans=["scan_a.npz", "scan_b.npz", "more/*.npz"], phase=FAST_PHASE)
    config = load_config(cfg)
    out = scan_dir / "batch"
    first = run_batch(config, out, scheduler=cluster.scheduler_address)
    assert len(first.done) == 3 and not first.failed
    done_a = (out / "scan_a" / "done.json").read_text()
    mtime_a = (out / "scan_a" / "reconstruction.npz").stat().st_mtime_ns
    obj_b = np.load(out / "scan_b" / "reconstruction.npz")["obj"]
    # an interruption: scan_b's folder half-written (no done.json), scan_c's temporary folder left behind
    os.remove(out / "scan_b" / "done.json")
    (out / "scan_b" / "strain.npz").write_bytes(b"half")
    os.rename(out / "more_scan_c", out / ".more_scan_c.tmp-deadbeef")

    events = []
    second = run_batch(config, out, scheduler=cluster.scheduler_address, on_event=lambda k, i: events.append((k, i)))
    assert len(second.done) == 3 and not second.failed
    assert [i["scan"] for k, i in events if k == "skipped"] == ["scan_a"]
    assert sorted(i["scan"] for k, i in events if k == "submitted") == ["more_scan_c", "scan_b"]
    assert (out / "scan_a" / "done.json").read_text() == done_a
    assert (out / "scan_a" / "reconstruction.npz").stat().st_mtime_ns == mtime_a
    np.testing.assert_array_equal(np.load(out / "scan_b" / "reconstruction.npz")["obj"], obj_b)
    np.load(out / "scan_b" / "strain.npz")["het_strain"]  # redone: a real file again
    rows = _summary(out)
    assert [rows[s]["status"] for s in ("scan_a", "scan_b", "more_scan_c")] == ["done"] * 3
    _no_leftovers(out)
    # a changed configuration is not "finished": every scan is redone
    config.phase.seed = 7
    third = run_batch(config, out, scheduler=cluster.scheduler_address)
    assert len(third.done) == 3 and not any(r.get("skipped") for r in third.rows)
    assert json.loads((out / "scan_a" / "done.json").read_text())["digest"] != json.loads(done_a)["digest"]


def test_a_killed_worker_its_scan_is_retried_and_nothing_is_duplicated(tmp_path, patterns, cluster):
    from distributed import Client

    for i in range(4):
        save_scan(tmp_path / f"s{i}.npz", patterns[i])
    slow = {"method": "conventional", "recipe": "HIO**300, ER**200", "runs": 2}
    config = load_config(write_config(tmp_path, scans=["s*.npz"], phase=slow))
    out = tmp_path / "batch"
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(
        result=run_batch(config, out, scheduler=cluster.scheduler_address, poll_s=0.2)))
    thread.start()
    killed = None
    with Client(cluster.scheduler_address) as client:
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and thread.is_alive():
            busy = {w: keys for w, keys in client.processing().items() if keys}
            tmp_dirs = [p for p in out.glob(".*.tmp-*")] if out.exists() else []
            if busy and tmp_dirs:
                time.sleep(0.3)  # well inside a scan
                worker, keys = next(iter(busy.items()))
                pids = client.run(os.getpid, workers=[worker])
                killed = (pids[worker], [str(k) for k in keys])
                os.kill(pids[worker], signal.SIGKILL)
            time.sleep(0.1)
    thread.join(timeout=240)
    assert killed is not None, "no scan was caught running"
    result = box["result"]
    assert len(result.done) == 4 and not result.failed
    names = sorted(r["scan"] for r in result.rows)
    assert names == ["s0", "s1", "s2", "s3"]  # one row each: no duplicate
    assert sorted(p.name for p in out.iterdir()) == ["s0", "s1", "s2", "s3", "summary.csv", "summary.html"]
    for s in names:
        row = json.loads((out / s / "done.json").read_text())
        assert row["status"] == "done" and not row["worker"].endswith(f":{killed[0]}")
        np.load(out / s / "reconstruction.npz")["obj"]
        np.load(out / s / "strain.npz")["het_strain"]
