"""A one-page report of a post-processed reconstruction (matplotlib, Agg: no display, no Qt).

:func:`write_report` draws, on one A4 landscape page:

* three orthogonal slices through the crystal's centre of mass (:func:`.surface.com_slices`) of the
  modulus, the phase and the strain, in nm with a scale bar, cropped to the crystal;
* the isosurface coloured by strain (:func:`.surface.result_surface`, drawn as triangles in a matplotlib 3D
  axes), diverging colormap symmetric about 0;
* the strain histogram inside the support with its mean and standard deviation;
* the LLK history of the phasing (``Reconstruction.history``), the PRTF curve (:func:`.metrics.prtf`)
  with its resolution, and the provenance (input, method, recipe, geometry...).

Panels whose data are not known (no history, no measured intensity for the PRTF) say so. The file is PNG or
PDF by its suffix and written atomically (:func:`.io.atomic.atomic_path`), never over an input
(``protect=``). :func:`slices_rgba` renders the slice panel alone to an RGBA array (the Results dock shows
it). matplotlib is imported inside the functions, through its object API (``Figure`` + ``FigureCanvasAgg``):
no global backend is switched and it is safe in a worker thread.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BCDIError
from .io.atomic import atomic_path
from .postprocess import StrainResult, crop_slices
from .progress import CancelToken, ProgressFn, report
from .surface import com_slices, result_surface, symmetric_limits

FORMATS = {".png": "png", ".pdf": "pdf"}
PAGE_IN = (11.69, 8.27)  # A4 landscape
PNG_DPI = 150
STRAIN_CMAP = "coolwarm"  # ParaView's "Cool to Warm": blue compressive, red tensile
PHASE_CMAP = "twilight"
MAX_TRIANGLES = 30_000  # the 3D panel decimates (marching-cubes step) above this
PLANES = ("z", "y", "x")
LINE_CHARS = 78  # provenance lines are wrapped to the width of their panel


def _mpl():
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib comes with napari's stack
        raise BCDIError("the report needs matplotlib: pip install matplotlib") from None
    return Figure


def _cmap(name: str, bad: str = "#f2f2f2"):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad=bad)


def _checked(result: Any) -> StrainResult:
    if not isinstance(result, StrainResult):
        raise BCDIError(f"a post-processed result (StrainResult) is needed for a report, got {type(result).__name__}: "
                        "post-process the reconstruction first")
    if np.asarray(result.support).ndim != 3 or not np.any(result.support):
        raise BCDIError("the result's support is empty: nothing to report")
    return result


def _masked(result: StrainResult) -> dict:
    s = np.asarray(result.support) != 0
    return {"modulus": np.asarray(result.modulus, np.float32),
            "phase": np.where(s, result.phase, np.nan).astype(np.float32),
            "strain": np.where(s, result.strain, np.nan).astype(np.float32)}


# ------------------------------------------------------------------------------------------- panels
def _scale_bar(ax, extent_nm: float) -> None:
    """A scale bar of a round length about a fifth of the panel's width (nm)."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    target = extent_nm / 5
    if not target > 0:
        return
    p = 10 ** np.floor(np.log10(target))
    length = max(m * p for m in (1, 2, 5) if m * p <= target)
    label = f"{length / 1000:g} µm" if length >= 1000 else f"{length:g} nm"
    ax.add_artist(AnchoredSizeBar(ax.transData, length, label, "lower right", pad=0.3, color="black",
                                  frameon=False, size_vertical=extent_nm / 150, fontproperties={"size": 6}))


def draw_slices(fig, spec, result: StrainResult, *, margin: int = 4, title_size: float = 8) -> dict:
    """Draw the 3 × 3 slices (rows: planes through the centre of mass; columns: modulus, phase, strain) into
    the gridspec cell ``spec`` of ``fig``; returns ``{"index": plane indices, "limits": {field: (lo, hi)}}``."""
    arrays = _masked(result)
    s = np.asarray(result.support) != 0
    box = crop_slices(s, margin)
    cropped = {k: v[box] for k, v in arrays.items()}
    sl = com_slices(cropped, cropped["modulus"], s[box], result.voxel_size)
    top = float(np.nanmax(cropped["modulus"])) or 1.0
    limits = {"modulus": (0.0, top), "phase": symmetric_limits(cropped["phase"][s[box]]),
              "strain": symmetric_limits(cropped["strain"][s[box]])}
    cmaps = {"modulus": _cmap("gray"), "phase": _cmap(PHASE_CMAP), "strain": _cmap(STRAIN_CMAP)}
    titles = {"modulus": "modulus", "phase": "phase (rad)", "strain": "strain"}
    axis_names = {0: "z", 1: "y", 2: "x"}
    grid = spec.subgridspec(3, 3, wspace=0.08, hspace=0.25)
    index_full = tuple(int(i + b.start) for i, b in zip(sl.index, box))
    for row, axis in enumerate(range(3)):
        rows, cols = [a for a in range(3) if a != axis]
        for col, name in enumerate(("modulus", "phase", "strain")):
            ax = fig.add_subplot(grid[row, col])
            ext = sl.extent(axis)
            im = ax.imshow(sl.planes[name][axis], cmap=cmaps[name], vmin=limits[name][0], vmax=limits[name][1],
                           extent=ext, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(titles[name], fontsize=title_size)
            if col == 0:
                ax.set_ylabel(f"{axis_names[axis]} = {index_full[axis]}\n({axis_names[rows]} ↓, "
                              f"{axis_names[cols]} →)", fontsize=6)
            _scale_bar(ax, ext[1] - ext[0])
            if row == 2:
                cb = fig.colorbar(im, ax=ax, orientation="horizontal", fraction=0.06, pad=0.04)
                cb.ax.tick_params(labelsize=5)
                if name == "strain":
                    cb.formatter.set_powerlimits((-2, 2))
                    cb.ax.xaxis.get_offset_text().set_fontsize(5)
                cb.update_ticks()
    return {"index": index_full, "limits": limits}


def draw_surface(fig, spec, result: StrainResult, *, threshold: float = 0.3, field: str = "strain") -> Any:
    """Draw the isosurface coloured by ``field`` as triangles in a 3D axes in ``spec``; returns the surface."""
    import matplotlib
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    surf = result_surface(result, field, threshold)
    if surf.n_faces > MAX_TRIANGLES:
        step = int(np.ceil(np.sqrt(surf.n_faces / MAX_TRIANGLES)))
        surf = result_surface(result, field, threshold, step=step + 1, limits=surf.limits)
    ax = fig.add_subplot(spec, projection="3d")
    xyz = surf.vertices[:, ::-1]  # plot (x, y, z) = array (x, y, z)
    tri = xyz[surf.faces]
    norm = matplotlib.colors.Normalize(*surf.limits)
    cmap = matplotlib.colormaps[STRAIN_CMAP if field != "phase" else PHASE_CMAP]
    colours = cmap(norm(surf.values[surf.faces].mean(axis=1)))
    # a little shading so the shape reads: darken faces turned away from a light above and in front
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    light = np.array([-0.5, -0.6, 0.62])
    shade = 0.55 + 0.45 * np.abs(n @ (light / np.linalg.norm(light)))
    colours[:, :3] *= shade[:, None]
    coll = Poly3DCollection(tri, facecolors=colours, edgecolors="none", linewidths=0)
    coll.set_rasterized(True)
    ax.add_collection3d(coll)
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_zlim(lo[2], hi[2])
    ax.set_box_aspect(np.maximum(hi - lo, 1e-9))
    ax.view_init(elev=25, azim=-55)
    for label, setter in (("x (nm)", ax.set_xlabel), ("y (nm)", ax.set_ylabel), ("z (nm)", ax.set_zlabel)):
        setter(label, fontsize=6, labelpad=-6)
    ax.tick_params(labelsize=5, pad=-2)
    unit = f" ({surf.unit})" if surf.unit else ""
    ax.set_title(f"isosurface {threshold:.0%} max, coloured by {field}{unit}", fontsize=8)
    mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    cb = fig.colorbar(mappable, ax=ax, shrink=0.6, pad=0.08)
    cb.ax.tick_params(labelsize=5)
    if field == "strain":
        cb.formatter.set_powerlimits((-2, 2))
        cb.ax.yaxis.get_offset_text().set_fontsize(5)
        cb.update_ticks()
    return surf


def draw_histogram(ax, result: StrainResult) -> dict:
    """Histogram of the strain inside the support with mean ± std; returns ``{"mean", "std", "n"}``."""
    vals = np.asarray(result.strain, np.float64)[np.asarray(result.support) != 0]
    vals = vals[np.isfinite(vals)]
    lo, hi = symmetric_limits(vals)
    ax.hist(np.clip(vals, lo, hi), bins=61, range=(lo, hi), color="#6b8fb8")
    mean, std = (float(vals.mean()), float(vals.std())) if vals.size else (0.0, 0.0)
    for x, style in ((mean, "-"), (mean - std, ":"), (mean + std, ":")):
        ax.axvline(x, color="#b2182b", linestyle=style, linewidth=0.8)
    ax.set_title(f"strain in {vals.size} voxels\nmean {mean:.2e}, std {std:.2e}", fontsize=7)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
    ax.tick_params(labelsize=5)
    ax.xaxis.get_offset_text().set_fontsize(5)
    return {"mean": mean, "std": std, "n": int(vals.size)}


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=7, wrap=True, transform=ax.transAxes,
            color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])


def draw_history(ax, history: Sequence[dict] | None) -> None:
    """LLK (and free LLK) against the iteration, log scale."""
    rows = [h for h in (history or []) if isinstance(h, dict) and h.get("iteration") is not None]
    it = np.array([float(h["iteration"]) for h in rows])
    drawn = False
    for key, label, colour in (("llk", "LLK", "#2166ac"), ("llk_free", "free LLK", "#b2182b")):
        y = np.array([np.nan if h.get(key) is None else float(h[key]) for h in rows])
        ok = np.isfinite(y) & (y > 0)
        if ok.any():
            ax.semilogy(it[ok], y[ok], label=label, color=colour, linewidth=0.9)
            drawn = True
    ax.set_title("phasing log-likelihood", fontsize=7)
    if not drawn:
        _no_data(ax, "no LLK history in this result")
        return
    ax.set_xlabel("iteration", fontsize=6)
    ax.legend(fontsize=5, frameon=False)
    ax.tick_params(labelsize=5)


def draw_prtf(ax, prtf: Any) -> None:
    """The PRTF against the spatial frequency, its 1/e threshold and resolution."""
    ax.set_title("PRTF", fontsize=7)
    if prtf is None:
        _no_data(ax, "no PRTF: the measured intensity is not known\n(bcdi-dl report --data PATTERN)")
        return
    f, v = np.asarray(prtf.frequency), np.asarray(prtf.values)
    ok = np.isfinite(v)
    ax.plot(f[ok], v[ok], color="#2166ac", linewidth=0.9)
    ax.axhline(prtf.threshold, color="#777777", linestyle=":", linewidth=0.8)
    ax.axvline(prtf.resolution_frequency, color="#b2182b", linestyle="--", linewidth=0.8)
    res = (f"{np.mean(prtf.resolution_nm):.3g} nm" if prtf.resolution_nm is not None
           else f"{prtf.resolution_voxels:.3g} voxels")
    ax.set_title(f"PRTF: resolution {res} (1/e)", fontsize=7)
    ax.set_xlabel("frequency / Nyquist", fontsize=6)
    ax.set_ylim(0, max(1.05, float(np.nanmax(v[ok])) * 1.05 if ok.any() else 1.05))
    ax.tick_params(labelsize=5)


def provenance_lines(provenance: dict | None, result: StrainResult) -> list[str]:
    """``key: value`` lines of the provenance, then the result's frame, voxel size and |G|."""
    import textwrap

    lines = []
    for k, v in (provenance or {}).items():
        if v is None or v == "" or v == {} or v == []:
            continue
        text = str(v)
        lines.append(f"{k}: {text if len(text) <= 300 else text[:297] + '...'}")
    vs = ", ".join(f"{v:.3g}" for v in result.voxel_size)
    g = "unknown" if result.g_norm is None else f"{result.g_norm:.4g} 1/nm"
    lines.append(f"frame: {result.frame}; voxel (z, y, x): {vs} nm; |G|: {g}; twin: {'yes' if result.twin else 'no'}")
    lines.extend(f"note: {n}" for n in (result.notes or [])[:4])
    return [w for line in lines for w in textwrap.wrap(line, width=LINE_CHARS, subsequent_indent="    ")]


def geometry_text(geometry: Any) -> str | None:
    """One line for a :class:`~.types.Geometry` (the known fields only), or None."""
    if geometry is None:
        return None
    parts = []
    for label, value, unit in (("E", geometry.energy_kev, " keV"), ("D", geometry.distance_m, " m"),
                               ("pixel", geometry.pixel_size_m, " m"), ("step", geometry.rocking_step_deg, "°"),
                               ("hkl", geometry.hkl, ""), ("a", geometry.lattice_nm, " nm")):
        if value is not None:
            if isinstance(value, (tuple, list)):
                value = " ".join(f"{x:g}" for x in value)
            elif isinstance(value, float):
                value = f"{value:g}"
            parts.append(f"{label} {value}{unit}")
    angles = {k: v for k, v in (geometry.angles_deg or {}).items() if v is not None}
    if angles:
        parts.append("angles " + ", ".join(f"{k} {float(v):.3f}°" for k, v in angles.items()))
    return "; ".join(parts) or None


# --------------------------------------------------------------------------------------------- page
def report_figure(result: StrainResult, *, history: Sequence[dict] | None = None, prtf: Any = None,
                  provenance: dict | None = None, threshold: float = 0.3, field: str = "strain",
                  progress: ProgressFn | None = None, cancel: CancelToken | None = None):
    """The report page as a matplotlib ``Figure`` (see the module docstring); steps 0-3 of 5 reported."""
    Figure = _mpl()
    result = _checked(result)
    fig = Figure(figsize=PAGE_IN, layout=None)
    fig.subplots_adjust(left=0.04, right=0.98, top=0.93, bottom=0.05)
    title = (provenance or {}).get("title") or "BCDI reconstruction"
    fig.suptitle(f"{title}: modulus, phase and strain", fontsize=11)
    outer = fig.add_gridspec(3, 6, wspace=0.35, hspace=0.45)
    report(progress, cancel, 0, 5)
    draw_slices(fig, outer[:, 0:3], result)
    report(progress, cancel, 1, 5)
    draw_surface(fig, outer[0:2, 3:5], result, threshold=threshold, field=field)
    report(progress, cancel, 2, 5)
    draw_histogram(fig.add_subplot(outer[0, 5]), result)
    draw_history(fig.add_subplot(outer[1, 5]), history)
    draw_prtf(fig.add_subplot(outer[2, 5]), prtf)
    text_ax = fig.add_subplot(outer[2, 3:5])
    text_ax.axis("off")
    lines = provenance_lines({k: v for k, v in (provenance or {}).items() if k != "title"}, result)
    text_ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=5.5, family="monospace",
                 transform=text_ax.transAxes, wrap=True)
    report(progress, cancel, 3, 5)
    return fig


def write_report(path: os.PathLike | str, result: StrainResult, *, history: Sequence[dict] | None = None,
                 prtf: Any = None, provenance: dict | None = None, threshold: float = 0.3, field: str = "strain",
                 protect: Iterable[os.PathLike | str] = (), progress: ProgressFn | None = None,
                 cancel: CancelToken | None = None) -> Path:
    """Write the one-page report of ``result`` to ``path`` (``.png`` or ``.pdf``), atomically.

    Parameters
    ----------
    path : the output file; its suffix chooses the format.
    result : the post-processed reconstruction (:class:`~.postprocess.StrainResult`).
    history : the phasing history (``Reconstruction.history``: dicts with ``iteration``, ``llk``,
        ``llk_free``), or None.
    prtf : a :class:`~.metrics.PRTF`, or None (the panel says the intensity is unknown).
    provenance : ``{label: value}`` lines (input, method, recipe, geometry, LLK...); ``"title"`` titles the page.
    threshold : isosurface level, fraction of the maximum modulus.
    field : the field colouring the isosurface (``strain``, ``displacement``, ``phase``).
    protect : input paths never written over.
    progress, cancel : see :mod:`.progress`; a cancelled report writes nothing.

    Returns
    -------
    The path written.
    """
    out = Path(path)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise BCDIError(f"{out}: a report is a .png or .pdf file (got '{out.suffix}'): choose one of those names")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = report_figure(result, history=history, prtf=prtf, provenance=provenance, threshold=threshold,
                        field=field, progress=progress, cancel=cancel)
    FigureCanvasAgg(fig)
    meta = {"Title": str((provenance or {}).get("title") or "BCDI reconstruction report"),
            "Creator": "napari-bcdi-dl"}
    with atomic_path(out, protect) as tmp:
        report(progress, cancel, 4, 5)
        fig.savefig(tmp, format=fmt, dpi=PNG_DPI, metadata=meta)
    report(progress, cancel, 5, 5)
    return out


def slices_rgba(result: StrainResult, *, width_px: int = 420, height_px: int = 440) -> np.ndarray:
    """The 3 × 3 slice panel of :func:`draw_slices` rendered alone: a uint8 (h, w, 4) RGBA array."""
    Figure = _mpl()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    result = _checked(result)
    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.95, bottom=0.02)
    draw_slices(fig, fig.add_gridspec(1, 1)[0, 0], result, title_size=7)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.array(canvas.buffer_rgba(), dtype=np.uint8)


def default_provenance(*, source: str | None = None, method: str | None = None, recipe: str | None = None,
                       geometry: Any = None, llk: float | None = None, llk_free: float | None = None,
                       title: str | None = None, **extra: Any) -> dict:
    """The provenance dict of a report: title, input, method, recipe, LLK, geometry, date and program."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        program = f"napari-bcdi-dl {version('napari-bcdi-dl')}"
    except PackageNotFoundError:  # pragma: no cover - a source checkout not installed
        program = "napari-bcdi-dl"

    def fmt(v):
        return None if v is None or not np.isfinite(float(v)) else f"{float(v):.5g}"

    prov = {"title": title or (Path(source).name if source else None), "input": source, "method": method,
            "recipe": recipe, "LLK": fmt(llk), "free LLK": fmt(llk_free), "geometry": geometry_text(geometry)}
    prov.update({k: v for k, v in extra.items() if v is not None})
    prov["made"] = f"{datetime.datetime.now().isoformat(timespec='seconds')} by {program}"
    return prov
