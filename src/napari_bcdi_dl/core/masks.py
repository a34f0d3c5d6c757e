"""Detector gap masks: presets, detection from the data, dilation, union and validation.

Masks are ``uint8`` arrays of the data's shape ``(z, y, x)`` = (rocking, detector rows, detector columns)
with **1 = gap / invalid voxel**. Every function returns a new array; inputs are never modified.

Detector presets list the detector rows and columns (half-open ``(start, stop)`` ranges, full detector
coordinates) that are gaps between chips or modules. Sources:

- **Maxipix** (ESRF, 2x2 chips of 256x256, 55 um): 516x516 with a 6-pixel cross at rows and columns
  255-260 inclusive; the same numbers are used by ``carnisj/bcdi`` (``bcdi/experiment/detector.py``,
  ``Maxipix._mask_gaps``) and ``clatlan/cdiutils`` (``cdiutils/io/loader.py``, ``Loader.get_mask``).
- **eiger2m** (the ID01 ``eiger2M`` detector, 2164x1030, 75 um): the chip and module gap lines of
  ``Eiger2M._mask_gaps`` in ``carnisj/bcdi`` and the identical list for ``"eiger2M"`` in
  ``clatlan/cdiutils`` ``Loader.get_mask``: rows 255-258, 511-551, 804-808, 1061-1101, 1355-1358,
  1611-1651, 1905-1908 and columns 255-258, 513-516, 771-774. The few partial-length defects of that one
  instrument listed there (e.g. rows 0-256 of columns 72-79) are not detector gaps and are left out:
  paint them or use :func:`detect_gaps`.
- **eiger500k** (one EIGER module, 514x1030 as in pyFAI ``Eiger500k.MAX_SHAPE``; ``silx-kit/pyFAI``
  ``src/pyFAI/detectors/_dectris.py`` documents that "512k modules (514*1030) are made of 2x4 submodules
  of 256*256 pixels. Two missing pixels are interpolated at each sub-module boundary"): a single module has
  no module gap; the preset masks the 4-pixel chip-boundary lines (rows 255-258, columns 255-258,
  513-516, 771-774), the same in-module lines as the ID01 eiger2M above, whose double-size and interpolated
  pixels are unreliable for BCDI.
- **eiger2_1m / eiger2_4m** (DECTRIS EIGER2, generic): modules of 512x1028 pixels separated by 38-row and
  12-column gaps (pyFAI ``Eiger2.MODULE_SIZE = (512, 1028)``, ``MODULE_GAP = (38, 12)``; the same numbers
  in ``DiamondLightSource/fast-feedback-service`` ``h5read/include/eiger2xe.h``), full sizes 1062x1028 and
  2162x2068 (pyFAI ``Eiger2_1M``, ``Eiger2_4M``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .errors import BCDIError

Range = tuple[int, int]


@dataclass(frozen=True)
class DetectorPreset:
    """Gap geometry of a detector, in full-detector pixel coordinates.

    Attributes
    ----------
    name : preset name (a key of :data:`PRESETS`).
    shape : full detector size ``(rows, cols)``.
    gap_rows : half-open ``(start, stop)`` ranges of detector rows that are gaps.
    gap_cols : half-open ``(start, stop)`` ranges of detector columns that are gaps.
    pixel_size_m : pixel size in m.
    aliases : other names the preset answers to (BLISS detector names...).
    """

    name: str
    shape: tuple[int, int]
    gap_rows: tuple[Range, ...]
    gap_cols: tuple[Range, ...]
    pixel_size_m: float = 75e-6
    aliases: tuple[str, ...] = ()

    def mask2d(self) -> np.ndarray:
        """Return the full-detector ``uint8`` gap mask ``(rows, cols)``."""
        m = np.zeros(self.shape, dtype=np.uint8)
        for a, b in self.gap_rows:
            m[a:b, :] = 1
        for a, b in self.gap_cols:
            m[:, a:b] = 1
        return m


def _eiger2_gaps(n_modules: int, module: int, gap: int) -> tuple[Range, ...]:
    """Gap ranges between ``n_modules`` modules of ``module`` pixels separated by ``gap`` pixels."""
    return tuple((k * (module + gap) - gap, k * (module + gap)) for k in range(1, n_modules))


_CHIP_LINES_ROWS: tuple[Range, ...] = ((255, 259),)
_CHIP_LINES_COLS: tuple[Range, ...] = ((255, 259), (513, 517), (771, 775))

PRESETS: dict[str, DetectorPreset] = {
    p.name: p
    for p in (
        DetectorPreset(
            "maxipix", (516, 516), ((255, 261),), ((255, 261),), 55e-6,
            aliases=("mpx1x4", "mpx4", "mpxgaas", "mpx4inr", "mpx"),
        ),
        DetectorPreset(
            "eiger2m",
            (2164, 1030),
            ((255, 259), (511, 552), (804, 809), (1061, 1102), (1355, 1359), (1611, 1652), (1905, 1909)),
            _CHIP_LINES_COLS,
            75e-6,
            aliases=("eiger2M", "ei2m", "eiger2_m"),
        ),
        DetectorPreset(
            "eiger500k", (514, 1030), _CHIP_LINES_ROWS, _CHIP_LINES_COLS, 75e-6,
            aliases=("eiger 500k", "eiger_500k", "e500k"),
        ),
        DetectorPreset(
            "eiger2_1m", (1062, 1028), _eiger2_gaps(2, 512, 38), (), 75e-6, aliases=("eiger2 1m",),
        ),
        DetectorPreset(
            "eiger2_4m", (2162, 2068), _eiger2_gaps(4, 512, 38), _eiger2_gaps(2, 1028, 12), 75e-6,
            aliases=("eiger2 4m",),
        ),
    )
}


def get_preset(name: str) -> DetectorPreset:
    """Return the preset called ``name`` (case-insensitive; aliases such as ``mpx1x4`` accepted)."""
    key = str(name).strip().lower()
    for p in PRESETS.values():
        if key == p.name or key in (a.lower() for a in p.aliases):
            return p
    raise BCDIError(
        f"unknown detector preset {name!r}: choose one of {', '.join(sorted(PRESETS))}"
    )


def preset_mask(
    name: str,
    data_shape: Sequence[int],
    roi_offset: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Gap mask of a detector preset for data cropped from the detector.

    Parameters
    ----------
    name : preset name (see :data:`PRESETS`) or an alias such as the BLISS name ``mpx1x4``.
    data_shape : ``(z, y, x)`` shape of the scan, or ``(y, x)`` for a single frame.
    roi_offset : detector ``(row0, col0)`` of the data's pixel ``[..., 0, 0]`` (the ROI the scan was
        cropped to; ``Geometry.roi`` gives ``(row0, row1, col0, col1)``).

    Returns
    -------
    np.ndarray
        ``uint8`` mask of ``data_shape``, 1 on the detector gaps, repeated over all frames.

    Raises
    ------
    BCDIError
        Unknown preset, or a ROI that does not fit inside the detector.
    """
    preset = get_preset(name)
    shape = tuple(int(s) for s in data_shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise BCDIError(f"preset mask {preset.name}: data shape {shape} is not 2D/3D; give (z, y, x)")
    ny, nx = shape[-2:]
    r0, c0 = (int(v) for v in roi_offset)
    if r0 < 0 or c0 < 0 or r0 + ny > preset.shape[0] or c0 + nx > preset.shape[1]:
        raise BCDIError(
            f"preset mask {preset.name}: ROI rows {r0}-{r0 + ny - 1}, cols {c0}-{c0 + nx - 1} do not fit "
            f"in the {preset.shape[0]}x{preset.shape[1]} detector; check the ROI offset or the detector"
        )
    plane = preset.mask2d()[r0:r0 + ny, c0:c0 + nx]
    if len(shape) == 2:
        return plane.copy()
    return np.ascontiguousarray(np.broadcast_to(plane, shape)).astype(np.uint8, copy=True)


def _runs_1d(flags: np.ndarray) -> list[tuple[int, int]]:
    """Half-open runs of True in a 1D boolean array."""
    f = np.concatenate(([False], np.asarray(flags, bool), [False]))
    d = np.diff(f.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    stops = np.flatnonzero(d == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops)]


def detect_gaps(
    data: np.ndarray,
    *,
    axes: Sequence[int] = (1, 2),
    max_width: int = 48,
    min_expected: float = 20.0,
    tolerance: float = 0.0,
    border: bool = False,
) -> np.ndarray:
    """Find detector gap lines from the data: rows/columns dead in every frame while neighbours count.

    A run of adjacent detector rows (or columns) is a gap when, summed over the rocking axis, every pixel
    of it is zero (or negative: some detectors flag gaps with -1/-2) and the rows just outside the run
    predict at least ``min_expected`` counts inside it. The prediction is the mean of the two neighbour
    rows, summed over the columns where both neighbours have counts, times the run width; a real row that
    should have received ``E`` counts is empty with Poisson probability ``exp(-E)``, so the default
    (20 counts, p ~ 2e-9) never flags dark rows far from the peak, where zeros are just low intensity.
    This is the situation in real data: the zero lines of a gap cross the Bragg peak region, where the
    neighbours are bright, and continue into dark regions where nothing can be told apart.

    Parameters
    ----------
    data : 3D ``(z, y, x)`` intensity in photon counts (2D frames are accepted as one frame).
    axes : axes searched: 1 = detector rows, 2 = detector columns, 0 = whole dead frames.
    max_width : widest run (pixels) accepted as a gap; wider dark bands are not gaps.
    min_expected : counts the neighbours must predict inside the run (data in photon counts; scale it
        for normalised data).
    tolerance : fraction of live pixels (over the columns where the neighbours count) still accepted
        in a gap line (hot pixels, a reader that interpolated a few gap pixels).
    border : also accept runs touching the array border (one neighbour only). Off by default: a dark
        band at the edge of a crop is usually just the edge of the signal.

    Returns
    -------
    np.ndarray
        ``uint8`` mask of ``data.shape``, 1 on the detected gap lines (whole planes of the array).
    """
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise BCDIError(f"detect gaps: data has {arr.ndim} dimensions; give a 3D (z, y, x) stack")
    if arr.size == 0:
        raise BCDIError("detect gaps: data is empty")
    out = np.zeros(arr.shape, dtype=np.uint8)
    axes = [int(a) for a in axes]
    for ax in axes:
        if ax not in (0, 1, 2):
            raise BCDIError(f"detect gaps: axis {ax} is not 0, 1 or 2")
    # Projections of the positive counts, frame by frame (a 512x512x300 scan is never copied whole):
    # ``det`` (y, x) summed over the rocking axis, ``frames`` (z, x) summed over the rows.
    det = np.zeros(arr.shape[1:], dtype=np.float64)
    frames = np.zeros((arr.shape[0], arr.shape[2]), dtype=np.float64)
    for k in range(arr.shape[0]):
        f = np.asarray(arr[k], dtype=np.float64)
        f = np.where(np.isfinite(f) & (f > 0), f, 0.0)
        det += f
        frames[k] = f.sum(axis=0)
    for ax in axes:
        # each row of ``lines`` is one candidate line (a detector row, column or a frame)
        lines = frames if ax == 0 else (det if ax == 1 else det.T)
        n = lines.shape[0]
        live = lines > 0
        live_frac = live.mean(axis=1)
        candidate = live_frac <= tolerance
        for a, b in _runs_1d(candidate):
            width = b - a
            if width > max_width:
                continue
            touches = a == 0 or b == n
            if touches and (not border or width == n):
                continue
            neighbours = [i for i in (a - 1, b) if 0 <= i < n]
            nb = lines[neighbours]
            both = np.all(nb > 0, axis=0)
            if not both.any():
                continue
            expected = nb[:, both].mean(axis=0).sum() * width
            if expected < min_expected:
                continue
            if tolerance > 0:
                dead_frac = 1.0 - live[a:b][:, both].mean()
                if dead_frac < 1.0 - tolerance:
                    continue
            sl = [slice(None)] * 3
            sl[ax] = slice(a, b)
            out[tuple(sl)] = 1
    if np.asarray(data).ndim == 2:
        return out[0]
    return out


def gap_runs(mask: np.ndarray, min_fraction: float = 0.5) -> list[tuple[int, int, int]]:
    """Half-open runs of (mostly) masked planes along each axis.

    Parameters
    ----------
    mask : 3D mask (1 = gap).
    min_fraction : a plane counts as masked when at least this fraction of its voxels is masked.

    Returns
    -------
    list of (axis, start, stop)
        Sorted by axis then start. A 6-pixel Maxipix cross in the detector gives
        ``[(1, r0, r0 + 6), (2, c0, c0 + 6)]``.
    """
    m = np.asarray(mask).astype(bool, copy=False)
    if m.ndim != 3:
        raise BCDIError(f"gap runs: mask has {m.ndim} dimensions; give a 3D (z, y, x) mask")
    out: list[tuple[int, int, int]] = []
    for ax in range(3):
        other = tuple(i for i in range(3) if i != ax)
        frac = m.mean(axis=other) if m.size else np.zeros(m.shape[ax])
        for a, b in _runs_1d(frac >= min_fraction):
            out.append((ax, a, b))
    return out


def dilate(mask: np.ndarray, n: int, axes: Sequence[int] | None = None) -> np.ndarray:
    """Grow the masked region by ``n`` voxels (a cube of half-width ``n``, i.e. Chebyshev distance).

    Parameters
    ----------
    mask : mask of any dimension (1 = gap).
    n : voxels added on each side; 0 returns a copy.
    axes : grow only along these axes (e.g. ``(1, 2)`` for the detector plane); all axes by default.

    Returns
    -------
    np.ndarray
        New ``uint8`` mask.
    """
    m = np.asarray(mask)
    n = int(n)
    if n < 0:
        raise BCDIError(f"dilate: n = {n} is negative; give a number of voxels >= 0")
    out = m.astype(bool)
    if n == 0 or not out.any():
        return out.astype(np.uint8)
    size = [1] * m.ndim
    for ax in range(m.ndim) if axes is None else axes:
        size[int(ax)] = 2 * n + 1
    return ndimage.maximum_filter(out.astype(np.uint8), size=size, mode="constant", cval=0)


def union(*masks: np.ndarray | None) -> np.ndarray:
    """Voxel-wise OR of masks of the same shape (``None`` entries are skipped).

    Raises
    ------
    BCDIError
        No mask given, or shapes differ.
    """
    arrays = [np.asarray(m) for m in masks if m is not None]
    if not arrays:
        raise BCDIError("mask union: no mask given; give at least one mask")
    shape = arrays[0].shape
    for i, a in enumerate(arrays[1:], start=2):
        if a.shape != shape:
            raise BCDIError(f"mask union: mask {i} has shape {a.shape}, mask 1 has {shape}; masks must match")
    out = arrays[0] != 0
    for a in arrays[1:]:
        out = out | (a != 0)
    return out.astype(np.uint8)


def validate_mask(
    mask: np.ndarray,
    data_shape: Sequence[int],
    where: str = "mask",
    *,
    allow_empty: bool = True,
) -> np.ndarray:
    """Check a mask against the data and return it as a new ``uint8`` array (1 = gap).

    Accepted: a bool array, or numbers that are all 0 or 1, of the data's shape ``(z, y, x)``; a 2D
    ``(y, x)`` detector mask is repeated over every frame.

    Parameters
    ----------
    mask : the mask to check.
    data_shape : shape of the data it belongs to.
    where : name used in the error message (a layer or file name).
    allow_empty : accept a mask without any masked voxel.

    Raises
    ------
    BCDIError
        Wrong shape, values other than 0/1 (or NaN), every voxel masked, or (``allow_empty=False``) none.
    """
    shape = tuple(int(s) for s in data_shape)
    try:
        m = np.asarray(mask)
    except Exception as exc:  # noqa: BLE001 - any unreadable object is bad input
        raise BCDIError(f"{where}: cannot be read as an array ({exc}); give a 0/1 array") from None
    if m.dtype == object or not (m.dtype == bool or np.issubdtype(m.dtype, np.number)):
        raise BCDIError(f"{where}: dtype {m.dtype} is not numeric; give a 0/1 array")
    if m.ndim == 2 and len(shape) == 3 and m.shape == shape[1:]:
        m = np.broadcast_to(m, shape)
    if m.shape != shape:
        raise BCDIError(f"{where}: shape {m.shape} does not match the data {shape}; give a mask of the data's shape")
    if m.dtype != bool:
        if np.iscomplexobj(m):
            raise BCDIError(f"{where}: complex values; give a 0/1 array")
        bad = (m != 0) & (m != 1)
        if bad.any():
            v = m[bad].flat[0]
            raise BCDIError(f"{where}: value {v!r} is not 0 or 1 (1 = gap); binarise the mask first")
    out = np.array(m != 0, dtype=np.uint8)
    n = int(out.sum())
    if n == out.size:
        raise BCDIError(f"{where}: every voxel is masked, nothing valid is left; check the mask (1 = gap)")
    if n == 0 and not allow_empty:
        raise BCDIError(f"{where}: no voxel is masked; paint or detect the gaps first")
    return out


# ------------------------------------------------------------------------------- pyFAI detector library
#: project names (and aliases) -> pyFAI detector names, where pyFAI's library knows the module gaps.
#: The 34-ID-C Timepix quad (2x2 Timepix chips, 516x516, 55 um) has the chip layout of pyFAI's Maxipix2x2.
#: Not here (kept as the project's presets, see the module docstring): ``eiger2m`` (ID01's 2164x1030, not
#: in pyFAI) and ``eiger500k`` (pyFAI's Eiger500k has no gap: one module, its chip lines are not masked).
PYFAI_NAMES = {
    "maxipix": "Maxipix2x2",
    "mpx1x4": "Maxipix2x2",
    "mpx4": "Maxipix2x2",
    "mpxgaas": "Maxipix2x2",
    "mpx4inr": "Maxipix2x2",
    "mpx": "Maxipix2x2",
    "timepix": "Maxipix2x2",
    "eiger2_1m": "Eiger2_1M",
    "eiger2 1m": "Eiger2_1M",
    "eiger2_4m": "Eiger2_4M",
    "eiger2 4m": "Eiger2_4M",
}
GAP_SOURCES = ("auto", "pyfai", "preset")


def pyfai_detector(name: str):
    """pyFAI's detector object for ``name`` (a project name such as ``mpx1x4`` or any pyFAI name), or None.

    pyFAI is an optional dependency; it is imported here without Qt (pyFAI's import tries ``silx.gui.qt``
    and does without it), so that ``core`` never loads a GUI toolkit.
    """
    import sys

    key = str(name).strip()
    target = PYFAI_NAMES.get(key.lower(), key)
    try:
        blocked = not any(m in sys.modules for m in ("PyQt5", "PyQt6", "PySide2", "PySide6"))
        if blocked and "silx.gui.qt" not in sys.modules:
            sys.modules["silx.gui.qt"] = None  # type: ignore[assignment]  # ImportError for pyFAI's GUI models
        else:
            blocked = False
        try:
            from pyFAI import detectors as pyfai_detectors
        finally:
            if blocked and sys.modules.get("silx.gui.qt", 0) is None:
                del sys.modules["silx.gui.qt"]
    except ImportError:
        return None
    try:
        return pyfai_detectors.detector_factory(target)
    except Exception:  # noqa: BLE001 - pyFAI raises RuntimeError/KeyError for unknown names
        return None


def _pyfai_gap_plane(name: str) -> tuple[np.ndarray, str] | None:
    det = pyfai_detector(name)
    if det is None:
        return None
    m = det.mask if getattr(det, "mask", None) is not None else det.calc_mask()
    if m is None or not np.any(m):
        return None
    return (np.asarray(m) != 0).astype(np.uint8), f"pyFAI {type(det).__name__}"


def detector_gap_mask(
    name: str,
    frame_shape: Sequence[int],
    roi_offset: tuple[int, int] = (0, 0),
    *,
    source: str = "auto",
) -> tuple[np.ndarray, str]:
    """2D gap mask of a detector for data cropped from it, from pyFAI's detector library where it knows
    the detector's module gaps, else from the project's presets.

    Parameters
    ----------
    name : detector name: a preset name or alias (``maxipix``, ``mpx1x4``, ``eiger2m``...), ``timepix``, or
        any name pyFAI's ``detector_factory`` knows (``Pilatus1M``, ``Eiger2_9M``...).
    frame_shape : (rows, cols) of the data's frames (a (z, y, x) shape is accepted: its last two axes).
    roi_offset : detector (row0, col0) of the data's first pixel.
    source : ``"auto"`` (pyFAI first), ``"pyfai"`` or ``"preset"``.

    Returns
    -------
    (mask, origin)
        uint8 (rows, cols) mask with 1 on the gaps, and where it came from (``"pyFAI Maxipix2x2"``,
        ``"preset maxipix"``).

    Notes
    -----
    pyFAI masks the Maxipix 2x2 gap as the 4 pixels 256-259 of each axis (where no sensor is); the preset
    ``maxipix`` (bcdi, cdiutils) also masks pixels 255 and 260, the large edge pixels whose counts are
    shared with the gap. ``source="preset"`` keeps the wider mask.

    Raises
    ------
    BCDIError
        Unknown detector, unknown source, or a ROI that does not fit in the detector.
    """
    if source not in GAP_SOURCES:
        raise BCDIError(f"detector gaps: source {source!r} is unknown; use one of {', '.join(GAP_SOURCES)}")
    shape = tuple(int(s) for s in frame_shape)[-2:]
    plane = origin = None
    if source in ("auto", "pyfai"):
        found = _pyfai_gap_plane(name)
        if found is not None:
            plane, origin = found
        elif source == "pyfai":
            raise BCDIError(f"detector {name!r}: pyFAI does not know it or its gaps (is pyFAI installed?); use "
                            "source 'preset' or one of " + ", ".join(sorted(PRESETS)))
    if plane is None:
        try:
            preset = get_preset(name)
        except BCDIError:
            raise BCDIError(f"unknown detector {name!r}: neither pyFAI's detector library nor the presets "
                            f"({', '.join(sorted(PRESETS))}) know it; give the mask as a file") from None
        plane, origin = preset.mask2d(), f"preset {preset.name}"
    r0, c0 = (int(v) for v in roi_offset)
    ny, nx = shape
    if r0 < 0 or c0 < 0 or r0 + ny > plane.shape[0] or c0 + nx > plane.shape[1]:
        raise BCDIError(
            f"detector gaps ({origin}): ROI rows {r0}-{r0 + ny - 1}, cols {c0}-{c0 + nx - 1} do not fit in "
            f"the {plane.shape[0]}x{plane.shape[1]} detector; check the ROI offset or the detector")
    return plane[r0:r0 + ny, c0:c0 + nx].copy(), origin
