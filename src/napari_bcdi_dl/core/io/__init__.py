"""Readers and writers of BCDI data (layouts in docs/formats.md).

Public API (docs/dev/contracts.md):

- :func:`read` ``(path, *, scan=None, detector=None, roi=None) -> LoadedData`` — any supported format;
- :func:`can_read` ``(path) -> bool`` — cheap, never raises (the napari reader uses it);
- :func:`list_scans` ``(path) -> list[str]`` — BLISS scans, ``[]`` for other formats;
- :func:`read_mask` ``(path, shape) -> uint8`` — import a mask, shape-checked;
- :func:`write_npz`, :func:`write_cxi_data`, :func:`write_cxi_result`, :func:`write_reconstruction`
  (and :func:`write_intensity`, by suffix) — atomic, never over an input (``protect=``).
"""

from .cxi import write_cxi_data, write_cxi_mask, write_cxi_result
from .npy import write_npz
from .read import (
    can_read,
    format_of,
    is_mask_file,
    list_detectors,
    list_scans,
    read,
    read_mask,
    reconstruction_from,
    write_intensity,
    write_reconstruction,
)

__all__ = [
    "can_read",
    "format_of",
    "is_mask_file",
    "list_detectors",
    "list_scans",
    "read",
    "read_mask",
    "reconstruction_from",
    "write_cxi_data",
    "write_cxi_mask",
    "write_cxi_result",
    "write_intensity",
    "write_npz",
    "write_reconstruction",
]
