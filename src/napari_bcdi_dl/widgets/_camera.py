"""Pointing the view at a crystal: the camera and scale bar across napari versions, an oblique 3D angle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: camera angles (degrees) of an oblique 3D view on a crystal, like ParaView's default perspective
OBLIQUE_ANGLES = (-20.0, 35.0, 60.0)


def viewer_camera(viewer: Any) -> Any:
    """The viewer's camera: ``viewer.scene.camera`` (napari ≥ 0.9), else the legacy ``viewer.camera``."""
    return getattr(getattr(viewer, "scene", None), "camera", None) or viewer.camera


def viewer_scale_bar(viewer: Any) -> Any:
    """The scale bar overlay: ``viewer.canvas.overlays.scale_bar`` (napari ≥ 0.9), else ``viewer.scale_bar``."""
    overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)
    return getattr(overlays, "scale_bar", None) or viewer.scale_bar


def canvas_size(viewer: Any) -> tuple[int, int]:
    """The canvas size in pixels (height, width); (600, 800) when it is not known."""
    size = getattr(getattr(viewer, "canvas", None), "size", None) or getattr(viewer, "_canvas_size", None)
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        return 600, 800
    return (h, w) if h > 0 and w > 0 else (600, 800)


def look_at(viewer: Any, centre: Sequence[float], extent: Sequence[float], *,
            angles: Sequence[float] | None = OBLIQUE_ANGLES, fill: float = 0.75) -> None:
    """Point the view at a crystal: the slicing point and the camera centre at ``centre`` (world (z, y, x)),
    the zoom so that ``extent`` (its size, world units) fills ``fill`` of the canvas, and in 3D the camera at
    ``angles`` (None: keep the current angles)."""
    cam = viewer_camera(viewer)
    centre = [float(c) for c in centre]
    ndim = viewer.dims.ndim
    if ndim >= 3:
        axes = list(range(ndim - 3, ndim))
        viewer.dims.set_point(axes, centre)
    cam.center = tuple(centre)
    size = max(float(e) for e in extent) or 1.0
    cam.zoom = fill * min(canvas_size(viewer)) / size
    if angles is not None and viewer.dims.ndisplay == 3:
        cam.angles = tuple(float(a) for a in angles)
