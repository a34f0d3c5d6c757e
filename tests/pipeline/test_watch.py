"""``--watch``: a scan written after the batch started is processed, once it is complete."""

from __future__ import annotations

import io
import threading
import time

import numpy as np

from napari_bcdi_dl.pipeline.batch import run_batch
from napari_bcdi_dl.pipeline.config import load_config

from .conftest import FAST_PHASE, write_config


def _write_slowly(path, intensity, pieces: int = 6, pause: float = 0.25) -> float:
    """Write an npz in pieces (a detector still writing); returns the time it was complete."""
    buf = io.BytesIO()
    np.savez(buf, data=intensity)
    raw = buf.getvalue()
    step = len(raw) // pieces + 1
    with open(path, "wb") as fh:
        for i in range(0, len(raw), step):
            fh.write(raw[i:i + step])
            fh.flush()
            time.sleep(pause)
    return time.monotonic()


def test_watch_picks_up_a_new_scan_only_once_it_is_complete(tmp_path, patterns, cluster):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    config = load_config(write_config(tmp_path, scans=["incoming/*.npz"], phase=FAST_PHASE))
    out = tmp_path / "live"
    events: list = []

    def on_event(kind, info):
        events.append((time.monotonic(), kind, info))

    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(result=run_batch(
        config, out, scheduler=cluster.scheduler_address, watch=True, poll_s=0.2, watch_timeout=4.0,
        max_scans=2, on_event=on_event)))
    thread.start()
    time.sleep(0.6)  # the batch is watching an empty folder
    complete_1 = _write_slowly(incoming / "scan_1.npz", patterns[0])
    time.sleep(0.5)
    (incoming / "notes.txt").write_text("not a scan")  # not matched by the glob
    complete_2 = _write_slowly(incoming / "scan_2.npz", patterns[1])
    thread.join(timeout=120)
    assert not thread.is_alive()
    result = box["result"]
    assert sorted(r["scan"] for r in result.rows) == ["incoming_scan_1", "incoming_scan_2"]
    assert all(r["status"] == "done" for r in result.rows), result.rows
    submitted = {i["scan"]: t for t, k, i in events if k == "submitted"}
    assert submitted["incoming_scan_1"] > complete_1 and submitted["incoming_scan_2"] > complete_2
    assert [k for _t, k, _i in events].count("submitted") == 2  # each once
    assert (out / "incoming_scan_2" / "done.json").is_file()


def test_a_bliss_master_file_gives_each_scan_once_its_end_is_written(tmp_path, patterns):
    import h5py
    from bcdi_test_files import bliss_dataset

    from napari_bcdi_dl.pipeline.config import config_from_dict
    from napari_bcdi_dl.pipeline.scans import expand_scans
    from napari_bcdi_dl.pipeline.watch import Watcher

    frames = {n: np.random.default_rng(n).poisson(patterns[i]).astype(np.uint32) for i, n in enumerate((3, 4))}
    master = bliss_dataset(tmp_path, frames)
    cfg = config_from_dict({"scans": [{"file": str(master), "scans": [3, 4]}]}, tmp_path)
    assert [i.scan for i in expand_scans(cfg)] == ["3", "4"]
    watcher = Watcher(cfg)
    assert watcher.poll() == []  # no scan has ended, the file was just seen
    with h5py.File(master, "a") as f:  # BLISS writes end_time when a scan ends
        f["3.1"].create_dataset("end_time", data="2024-03-12T10:20:00+01:00")
    assert [i.scan for i in watcher.poll()] == ["3"]
    assert watcher.poll() == []  # given once; scan 4 still running (the file just changed)
    assert [i.scan for i in watcher.poll()] == ["4"]  # the file at rest over two polls: scan 4 is complete
    assert watcher.poll() == []
