"""Display helpers of the Results widget: field parsing, number formatting, the strain histogram."""

from __future__ import annotations

import numpy as np
from qtpy.QtGui import QColor, QPainter
from qtpy.QtWidgets import QWidget

from ..core.errors import BCDIError

TABLE_COLUMNS = ("reconstruction", "method", "LLK", "free LLK", "χ²", "PRTF res.", "sharpness",
                 "error vs 1st", "phase RMSE (rad)", "twin")


def _fmt(v, spec: str = ".4g") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    try:
        return format(float(v), spec) if np.isfinite(float(v)) else "n/a"
    except (TypeError, ValueError):
        return str(v)


def _float_or_none(text: str, what: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        v = float(text)
    except ValueError:
        raise BCDIError(f"{what} '{text}' is not a number: type a number or leave it empty") from None
    if not np.isfinite(v) or v <= 0:
        raise BCDIError(f"{what} {v} must be positive: type a positive number or leave it empty")
    return v


def _numbers(text: str, n: int, what: str, kind=float) -> tuple | None:
    parts = text.replace(",", " ").split()
    if not parts:
        return None
    try:
        vals = tuple(kind(p) for p in parts)
    except ValueError:
        raise BCDIError(f"{what} '{text}': type {n} numbers separated by spaces") from None
    if len(vals) == 1 and n > 1 and kind is float:
        vals = vals * n
    if len(vals) != n:
        raise BCDIError(f"{what} '{text}': type {n} numbers separated by spaces")
    return vals


# -------------------------------------------------------------------------------------------- histogram
class StrainHistogram(QWidget):
    """A small bar chart of the strain inside the support, drawn with QPainter."""

    def __init__(self, bins: int = 41) -> None:
        super().__init__()
        self.bins = bins
        self.counts = np.zeros(0)
        self.limits = (-1.0, 1.0)
        self.setMinimumHeight(80)

    def set_values(self, values: np.ndarray, limit: float) -> None:
        self.limits = (-limit, limit)
        self.counts, _ = np.histogram(np.clip(values, -limit, limit), bins=self.bins, range=self.limits)
        self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        try:
            w, h = self.width(), self.height()
            p.fillRect(0, 0, w, h, QColor(38, 41, 48))
            if self.counts.size == 0 or self.counts.max() == 0:
                return
            bar = w / self.counts.size
            top = float(self.counts.max())
            for i, c in enumerate(self.counts):
                frac = i / max(self.counts.size - 1, 1)  # magenta (−) → grey (0) → green (+), like PiYG
                col = QColor(197, 27, 125) if frac < 0.45 else QColor(77, 146, 33) if frac > 0.55 else \
                    QColor(200, 200, 200)
                bh = round((h - 4) * c / top)
                p.fillRect(int(i * bar), h - bh, max(int(bar) - 1, 1), bh, col)
            p.setPen(QColor(230, 230, 230))
            p.drawLine(w // 2, 0, w // 2, h)
        finally:
            p.end()


def table_cells(row: dict) -> tuple:
    """The texts of one metrics-table row (columns :data:`TABLE_COLUMNS`)."""
    prtf = row.get("prtf_nm")
    if prtf is not None:
        prtf_text = f"{prtf:.3g} nm"
    elif row.get("prtf_voxels") is not None:
        prtf_text = f"{row['prtf_voxels']:.3g} vox"
    else:
        prtf_text = "n/a"
    return (row["name"], row["method"], _fmt(row.get("llk")), _fmt(row.get("llk_free")), _fmt(row.get("chi2")),
            prtf_text, _fmt(row["sharpness"]), _fmt(row["error"], ".3g"), _fmt(row["phase_rmse"], ".3g"),
            _fmt(row["twin"]))
