"""Display helpers of the Results widget: field parsing, number formatting, the strain histogram, the colour
bar of the coloured isosurface."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QLinearGradient, QPainter
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
    """A small bar chart of the strain inside the support, drawn with QPainter (colours of coolwarm)."""

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
                frac = i / max(self.counts.size - 1, 1)  # blue (−) → grey (0) → red (+), like coolwarm
                col = QColor(70, 110, 220) if frac < 0.45 else QColor(210, 75, 60) if frac > 0.55 else \
                    QColor(200, 200, 200)
                bh = round((h - 4) * c / top)
                p.fillRect(int(i * bar), h - bh, max(int(bar) - 1, 1), bh, col)
            p.setPen(QColor(230, 230, 230))
            p.drawLine(w // 2, 0, w // 2, h)
        finally:
            p.end()


# -------------------------------------------------------------------------------------------- colour bar
def _tick(v: float) -> str:
    if v == 0:
        return "0"
    return f"{v:.2e}" if abs(v) < 1e-2 or abs(v) >= 1e4 else f"{v:.3g}"


class ColourBar(QWidget):
    """A horizontal colour bar: the colormap between the limits, ticks at both ends and 0, title with units."""

    def __init__(self) -> None:
        super().__init__()
        self.colormap = "coolwarm"
        self.limits = (-1.0, 1.0)
        self.title = ""
        self.setMinimumHeight(44)
        self.setMaximumHeight(52)

    def set_scale(self, colormap: str, limits: tuple[float, float], title: str) -> None:
        """Show ``colormap`` (a napari colormap name) over ``limits`` titled ``title`` (field and unit)."""
        self.colormap, self.limits, self.title = colormap, (float(limits[0]), float(limits[1])), title
        self.update()

    def text(self) -> str:
        """What the bar says: ``"<title>: <lo> … <hi>"``."""
        return f"{self.title}: {_tick(self.limits[0])} … {_tick(self.limits[1])}"

    def paintEvent(self, _event) -> None:
        from napari.utils.colormaps import ensure_colormap

        p = QPainter(self)
        try:
            w, h = self.width(), self.height()
            p.fillRect(0, 0, w, h, QColor(38, 41, 48))
            colours = ensure_colormap(self.colormap).map(np.linspace(0, 1, 33))
            grad = QLinearGradient(6, 0, w - 6, 0)
            for i, c in enumerate(colours):
                grad.setColorAt(i / (len(colours) - 1), QColor.fromRgbF(*(float(x) for x in c[:4])))
            p.fillRect(6, 16, w - 12, 12, grad)
            p.setPen(QColor(230, 230, 230))
            p.drawText(6, 12, self.title)
            lo, hi = self.limits
            p.drawText(6, h - 3, _tick(lo))
            p.drawText(0, h - 14, w - 6, 14, int(Qt.AlignRight | Qt.AlignBottom), _tick(hi))
            if lo < 0 < hi:
                x = 6 + (w - 12) * (-lo) / (hi - lo)
                p.drawLine(int(x), 14, int(x), 30)
                p.drawText(int(x) - 3, h - 3, "0")
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
