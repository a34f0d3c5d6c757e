"""The batch summary: ``summary.csv`` and ``summary.html`` (one row per scan), and each scan's thumbnail.

Both files are rewritten, atomically, each time a scan finishes. The CSV has the columns of
:data:`COLUMNS` (``scan``, ``status`` = ``done`` | ``failed``, ``error``, ``llk``, ``llk_free``, timings
...); the HTML page shows the same rows with a thumbnail of each scan (central slices of the modulus, the
phase and the strain, a small PNG drawn with Matplotlib's Agg canvas) and reloads itself while the batch
runs.
"""

from __future__ import annotations

import csv
import html
import io
import time
from pathlib import Path

import numpy as np

COLUMNS = ["scan", "status", "error", "llk", "llk_free", "method", "recipe", "support_voxels", "read_s",
           "mask_s", "inpaint_s", "phase_s", "strain_s", "export_s", "total_s", "worker", "finished",
           "folder", "input"]
CSV = "summary.csv"
HTML = "summary.html"
THUMBNAIL = "thumbnail.png"


def write_thumbnail(path: str | Path, result) -> Path:
    """A small PNG of the central slices (axis 0) of modulus, phase and strain of a :class:`ScanResult`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    s = result.strain
    if s is not None:
        panels = [("modulus", s.modulus, "gray"), ("phase", s.phase, "twilight"), ("strain", s.strain, "RdBu_r")]
        support = np.asarray(s.support) != 0
    else:
        obj = np.asarray(result.reconstruction.obj)
        support = np.asarray(result.reconstruction.support) != 0
        panels = [("modulus", np.abs(obj), "gray"), ("phase", np.angle(obj), "twilight")]
    k = int(np.argmax(support.sum(axis=(1, 2)))) if support.any() else support.shape[0] // 2
    fig = Figure(figsize=(1.1 * len(panels), 1.25), dpi=80)
    FigureCanvasAgg(fig)
    for i, (name, a, cmap) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        sl = np.asarray(a[k], dtype=np.float32)
        if name != "modulus":
            sl = np.where(support[k], sl, np.nan)
        lim = float(np.nanmax(np.abs(sl))) if np.isfinite(sl).any() else 1.0
        kw = {"vmin": -lim, "vmax": lim} if name == "strain" else {}
        ax.imshow(sl, cmap=cmap, interpolation="nearest", **kw)
        ax.set_title(name, fontsize=7)
        ax.axis("off")
    fig.subplots_adjust(0.01, 0.01, 0.99, 0.85, 0.05, 0.05)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    from ..core.io.atomic import atomic_path

    out = Path(path)
    with atomic_path(out) as tmp:
        tmp.write_bytes(buf.getvalue())
    return out


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def write_csv(out_dir: str | Path, rows: list[dict]) -> Path:
    """``summary.csv``: one row per finished scan, :data:`COLUMNS` (and any others after them)."""
    from ..core.io.atomic import atomic_path

    extra = sorted({k for r in rows for k in r} - set(COLUMNS) - {"digest", "skipped"})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS + extra, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in COLUMNS + extra})
    out = Path(out_dir) / CSV
    with atomic_path(out) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    return out


def write_html(out_dir: str | Path, rows: list[dict], *, pending: int = 0, running: bool = False,
               title: str = "bcdi-dl batch") -> Path:
    """``summary.html``: a table of the scans with thumbnails; reloads every 20 s while ``running``."""
    from ..core.io.atomic import atomic_path

    out_dir = Path(out_dir)
    done = sum(r.get("status") == "done" for r in rows)
    failed = sum(r.get("status") == "failed" for r in rows)
    head = ["scan", "status", "LLK", "free LLK", "method", "phase (s)", "total (s)", "thumbnail", "error"]
    body = []
    for r in rows:
        folder = html.escape(str(r.get("folder") or r.get("scan", "")))
        thumb = out_dir / str(r.get("folder") or "") / THUMBNAIL
        img = f'<img src="{folder}/{THUMBNAIL}" alt="">' if r.get("folder") and thumb.is_file() else ""
        status = html.escape(str(r.get("status", "")))
        cells = [f'<a href="{folder}/">{html.escape(str(r.get("scan", "")))}</a>',
                 f'<span class="{status}">{status}</span>', _cell(r.get("llk")), _cell(r.get("llk_free")),
                 html.escape(_cell(r.get("method"))), _cell(r.get("phase_s")), _cell(r.get("total_s")), img,
                 html.escape(_cell(r.get("error")))]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    refresh = '<meta http-equiv="refresh" content="20">' if running else ""
    state = f"running, {pending} to go" if running else "finished"
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8">{refresh}<title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;font-size:13px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}} .failed{{color:#b00;font-weight:bold}}
.done{{color:#070}}</style></head><body>
<h3>{html.escape(title)}</h3>
<p>{done} done, {failed} failed ({state}); updated {time.strftime("%Y-%m-%d %H:%M:%S")}.
Table: <a href="{CSV}">{CSV}</a>.</p>
<table><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>
{chr(10).join(body)}
</table></body></html>
"""
    out = out_dir / HTML
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out
