"""``widgets._worker_process``: model work in a persistent child process (no viewer needed)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError, Cancelled
from napari_bcdi_dl.widgets._worker_process import ModelProcess

from . import _worker_process_probe as probe


@pytest.fixture(scope="module")
def proc():
    p = ModelProcess()
    yield p
    p.close()


def test_result_and_progress_come_back(proc):
    seen = []
    out, pid = proc.call(probe.scaled, np.arange(4.0), factor=2.0, progress=lambda d, t: seen.append((d, t)))
    np.testing.assert_array_equal(out, [0.0, 2.0, 4.0, 6.0])
    assert seen[-1] == (2, 2)
    assert pid == proc.pid != __import__("os").getpid()
    _out, pid2 = proc.call(probe.scaled, [1.0], factor=1.0)
    assert pid2 == pid, "the process is kept between calls"


def test_child_imports_no_gui(proc):
    assert proc.call(probe.gui_modules) == []


def test_errors_come_back_as_themselves(proc):
    with pytest.raises(BCDIError, match="no 3D dataset"):
        proc.call(probe.bad_input)


def test_cancel_stops_the_call(proc):
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done > 0:
            cancel.set()

    with pytest.raises(Cancelled):
        proc.call(probe.loop_until_cancelled, progress=progress, cancel=cancel)
    assert seen and seen[-1] < 99_999
    assert proc.call(probe.scaled, [1.0], factor=3.0)[0][0] == 3.0, "usable after a cancel"


def test_a_dead_child_is_an_error_then_replaced(proc):
    with pytest.raises(BCDIError, match="model process stopped"):
        proc.call(probe.crash)
    assert proc.call(probe.scaled, [1.0], factor=1.0)[0][0] == 1.0
