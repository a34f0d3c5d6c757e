"""The hostile corpus through the CLI: exit 2, exactly one line on stderr, no traceback, nothing written."""

from __future__ import annotations

import pytest
from bcdi_test_files import hostile_corpus

from napari_bcdi_dl.cli import main


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return hostile_corpus(tmp_path_factory.mktemp("hostile"))


def _args(kwargs: dict) -> list[str]:
    out = []
    for k, v in kwargs.items():
        out += [f"--{k}", str(v)]
    return out


CASES = [
    "truncated_hdf5",
    "hdf5_without_datasets",
    "cxi_without_data",
    "array_2d",
    "array_4d",
    "tiff_2d",
    "nan_counts",
    "inf_counts",
    "negative_counts",
    "empty_file.npz",
    "empty_file.cxi",
    "empty_file.npy",
    "mask_other_shape_npz",
    "mask_other_shape_cxi",
    "text_named_npz",
    "pickled_npy",
    "npz_two_stacks",
    "bliss_missing_lima_file",
    "bliss_several_scans_no_choice",
    "bliss_unknown_scan",
    "frames_of_two_shapes",
    "missing_file",
]


def test_cases_cover_the_corpus(corpus):
    assert set(CASES) == set(corpus)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", ["info", "convert"])
def test_one_line_exit_2_nothing_written(corpus, case, command, tmp_path, capsys):
    path, kwargs = corpus[case]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = [command, str(path)] + ([str(out_dir / "out.cxi")] if command == "convert" else []) + _args(kwargs)
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 2, captured
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"bcdi-dl {command}: error: ")
    assert "Traceback" not in captured.err + captured.out
    assert list(out_dir.iterdir()) == []  # no output, no temporary file left behind
