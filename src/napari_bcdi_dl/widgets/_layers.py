"""Plumbing shared by the dock widgets: layer lists, result layers, one job at a time, notifications.

Nothing here does science; the widgets stay thin by calling these helpers.

* :func:`bcdi_meta`, :func:`layer_kind`, :func:`find_layer`, :func:`is_volume_image`, :func:`is_volume_labels`
  read layers (by iteration: napari hands plugins a proxy viewer whose ``layers[name]`` returns wrapped
  layers that are not identical, ``is``, to the viewer's own).
* :class:`LayerFollower` calls a widget's refresh whenever the viewer's layer list changes (insert, remove,
  move, rename) and stops listening once the widget is gone; :func:`set_combo_items` refills a combo box
  keeping its choice.
* :func:`data_grid`, :func:`real_space`, :func:`derived_bcdi` give a result layer the physical ``scale`` /
  ``translate`` / ``units`` and the ``metadata["bcdi"]`` of its source; :func:`put_layer` (Image, Labels)
  and :func:`put_surface` add it or replace the data of the existing layer of that name.
* :func:`result_metadata` and :func:`result_of`: the one way a reconstruction travels with its layers
  (a :class:`~napari_bcdi_dl.core.types.ReconstructionResult` in ``metadata["bcdi"]["result"]``) and is read
  back, also from layers the reader made or plain complex images.
* (the camera helpers are in :mod:`._camera`.)
* :class:`IntensityPicker` holds the *Intensity* / *Gap mask* choices of the phasing widgets and reads
  private copies of the chosen arrays.
* :class:`JobSlot` runs one job at a time for a widget (a second is refused with a notification), disables
  its action buttons and enables *Cancel* while it runs; :class:`HasJobSlot` gives a widget ``job`` and
  ``cancel()`` over it; :func:`guarded` turns errors of a widget action into notifications.
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ..core.errors import BCDIError
from ..core.types import Geometry, Reconstruction, ReconstructionResult
from ._worker import Job, run_job, warm_activity_dock

log = logging.getLogger(__name__)

MASK_SUFFIX = " gap mask"
NO_MASK = "(no mask)"
#: keyword arguments of :func:`put_layer` set only when the layer is created: the user may have tuned them
CREATE_ONLY = frozenset({"opacity", "gamma", "rendering", "blending", "visible"})


# ------------------------------------------------------------------------------------------ notifications
def notify_error(message: str) -> None:
    """Show ``message`` as a napari error notification."""
    from napari.utils.notifications import show_error

    show_error(message)


def notify_warning(message: str) -> None:
    """Show ``message`` as a napari warning notification."""
    from napari.utils.notifications import show_warning

    show_warning(message)


def notify_info(message: str) -> None:
    """Show ``message`` as a napari info notification."""
    from napari.utils.notifications import show_info

    show_info(message)


def guarded(title: str) -> Callable[[Callable], Callable]:
    """Decorator of widget actions: a :class:`BCDIError` or any other exception becomes a notification.

    Parameters
    ----------
    title : str
        The widget's name, the prefix of the messages (``"<title>: <error>"``).

    Returns
    -------
    callable
        The decorator; the decorated method returns None after an error.
    """

    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except BCDIError as err:
                notify_error(f"{title}: {err}")
            except Exception as err:  # a bug must not take napari down: tell the user
                log.exception("%s: %s failed", title, method.__name__)
                notify_error(f"{title}: {method.__name__} failed: {type(err).__name__}: {err}")
            return None

        return wrapper

    return decorate


# ------------------------------------------------------------------------------------------- reading layers
def viewer_grid(viewer: Any) -> Any:
    """The viewer's grid settings: ``viewer.canvas.grid`` (napari ≥ 0.6), else the legacy ``viewer.grid``."""
    return getattr(getattr(viewer, "canvas", None), "grid", None) or viewer.grid


def bcdi_meta(layer: Any) -> dict:
    """The layer's ``metadata["bcdi"]`` (an empty dict when there is none; not a copy)."""
    return (getattr(layer, "metadata", None) or {}).get("bcdi") or {}


def layer_kind(layer: Any) -> str | None:
    """``metadata["bcdi"]["kind"]`` of a layer (``"intensity"``, ``"mask"``, ``"modulus"``...), or None."""
    return bcdi_meta(layer).get("kind")


def layer_name(layer_or_name: Any) -> str:
    """The name of a layer, or the string itself."""
    return str(getattr(layer_or_name, "name", layer_or_name))


def find_layer(viewer: Any, name: str | None) -> Any:
    """The viewer's layer called ``name``, or None (found by iteration, see the module docstring)."""
    if not name:
        return None
    return next((layer for layer in viewer.layers if layer.name == name), None)


def is_volume_image(layer: Any) -> bool:
    """True for a 3D, single-channel, real-valued Image layer (intensity-like)."""
    from napari.layers import Image

    if not isinstance(layer, Image) or layer.rgb or layer.ndim != 3:
        return False
    return not np.issubdtype(np.dtype(layer.dtype), np.complexfloating)


def is_volume_labels(layer: Any) -> bool:
    """True for a 3D Labels layer (a mask or a support)."""
    from napari.layers import Labels

    return isinstance(layer, Labels) and layer.ndim == 3


def is_intensity(layer: Any) -> bool:
    """A measured or derived intensity: a volume image whose ``kind`` is None or ``"intensity"``."""
    return is_volume_image(layer) and layer_kind(layer) in (None, "intensity")


# --------------------------------------------------------------------------------------------- layer lists
def set_combo_items(combo: Any, names: Sequence[str]) -> None:
    """Refill a QComboBox with ``names``, keeping the current choice when it is still listed.

    Signals are blocked while refilling: a refill is not a user's choice.
    """
    current = combo.currentText()
    combo.blockSignals(True)
    try:
        combo.clear()
        combo.addItems(list(names))
        if current in names:
            combo.setCurrentText(current)
    finally:
        combo.blockSignals(False)


def prefer_gap_mask(data_combo: Any, mask_combo: Any, unset: Iterable[str] | None = None) -> None:
    """Choose ``"<data> gap mask"`` in ``mask_combo`` when it is listed.

    Parameters
    ----------
    data_combo, mask_combo : QComboBox
        The data and mask choices.
    unset : iterable of str, optional
        Only change the mask when its current text is one of these (e.g. ``("", "(no mask)")``); by
        default the data's own mask is always preferred.
    """
    if unset is not None and mask_combo.currentText() not in tuple(unset):
        return
    data = data_combo.currentText()
    if data and mask_combo.findText(data + MASK_SUFFIX) >= 0:
        mask_combo.setCurrentText(data + MASK_SUFFIX)


def _alive(widget: Any) -> bool:
    try:
        widget.objectName()
    except RuntimeError:  # wrapped C/C++ object has been deleted
        return False
    return True


class LayerFollower:
    """Call ``callback()`` whenever the viewer's layer list changes: a layer inserted, removed, moved or
    renamed. Once ``owner`` (the widget) is deleted, the follower disconnects itself.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer (or napari's proxy of it) whose layers are followed.
    owner : QWidget
        The widget; when its Qt object is gone, events stop reaching ``callback``.
    callback : callable
        Called with no argument.
    """

    def __init__(self, viewer: Any, owner: Any, callback: Callable[[], Any]) -> None:
        self.viewer = viewer
        self.owner = owner
        self.callback = callback
        self._named: list = []  # layers whose name event is connected
        events = viewer.layers.events
        events.inserted.connect(self._on_inserted)
        events.removed.connect(self._on_changed)
        events.moved.connect(self._on_changed)
        for layer in viewer.layers:
            self._follow_name(layer)

    def _follow_name(self, layer: Any) -> None:
        layer.events.name.connect(self._on_changed)
        self._named.append(layer)

    def _on_inserted(self, event: Any) -> None:
        if _alive(self.owner):
            self._follow_name(event.value)
        self._on_changed()

    def _on_changed(self, *_args: Any) -> None:
        if not _alive(self.owner):  # the dock was closed: stop listening
            self.disconnect()
            return
        self.callback()

    def disconnect(self) -> None:
        """Stop following the viewer's layers."""
        events = self.viewer.layers.events
        for emitter, slot in ((events.inserted, self._on_inserted), (events.removed, self._on_changed),
                              (events.moved, self._on_changed)):
            emitter.disconnect(slot)
        for layer in self._named:
            layer.events.name.disconnect(self._on_changed)
        self._named = []


class IntensityPicker:
    """The *Intensity* and *Gap mask* choices of a phasing widget (Phasing, DL phase).

    *Intensity* lists the viewer's intensities (:func:`is_intensity`), *Gap mask* ``(no mask)`` and the 3D
    Labels layers that are not supports; with no mask chosen, the intensity's own ``"<data> gap mask"`` is
    the default.

    Parameters
    ----------
    viewer : napari.Viewer
        Whose layers are listed.
    data_combo, mask_combo : QComboBox
        The two choices (filled here).
    """

    def __init__(self, viewer: Any, data_combo: Any, mask_combo: Any) -> None:
        self.viewer = viewer
        self.data_combo = data_combo
        self.mask_combo = mask_combo
        data_combo.currentIndexChanged.connect(self.guess_mask)

    @staticmethod
    def is_mask(layer: Any) -> bool:
        """A 3D Labels layer that is not a reconstruction's support."""
        return is_volume_labels(layer) and layer_kind(layer) != "support"

    def refresh(self) -> None:
        """Refill both lists from the viewer's layers, keeping the choices that are still there."""
        layers = list(self.viewer.layers)
        set_combo_items(self.data_combo, [ly.name for ly in layers if is_intensity(ly)])
        set_combo_items(self.mask_combo, [NO_MASK] + [ly.name for ly in layers if self.is_mask(ly)])
        self.guess_mask()

    def guess_mask(self, *_args: Any) -> None:
        """With no mask chosen, default to the intensity's own ``"<data> gap mask"``."""
        prefer_gap_mask(self.data_combo, self.mask_combo, unset=("", NO_MASK))

    def select(self, data: Any, mask: Any = None) -> None:
        """Choose the intensity and the mask (layers or names; ``mask=None``: no mask)."""
        self.refresh()
        self.data_combo.setCurrentText(layer_name(data))
        self.mask_combo.setCurrentText(NO_MASK if mask is None else layer_name(mask))

    def inputs(self) -> tuple[Any, np.ndarray, np.ndarray | None]:
        """The chosen intensity layer, a float32 copy of its data and a uint8 copy of the mask (or None).

        Raises
        ------
        BCDIError
            No intensity chosen, the mask layer is gone, or its shape is not the intensity's.
        """
        name = self.data_combo.currentText()
        layer = find_layer(self.viewer, name)
        if layer is None:
            raise BCDIError("no intensity layer chosen: open a pattern and choose it under Intensity")
        data = np.array(layer.data, dtype=np.float32)  # a copy: the layer is never touched
        mask = None
        mname = self.mask_combo.currentText()
        if mname and mname != NO_MASK:
            mlayer = find_layer(self.viewer, mname)
            if mlayer is None:
                raise BCDIError(f"mask layer '{mname}' is gone: choose another or {NO_MASK}")
            mask = (np.asarray(mlayer.data) != 0).astype(np.uint8)
            if mask.shape != data.shape:
                raise BCDIError(f"mask '{mname}' has shape {mask.shape}, the intensity '{name}' {data.shape}: "
                                f"choose the mask of this intensity or {NO_MASK}")
        return layer, data, mask


# ------------------------------------------------------------------------------------------- result layers
def data_grid(layer: Any) -> dict:
    """``scale``, ``translate`` (and ``units`` when set) of ``layer``: for a result on the data's own grid."""
    out: dict = {"scale": tuple(float(v) for v in layer.scale),
                 "translate": tuple(float(v) for v in layer.translate)}
    units = getattr(layer, "units", None)
    if units is not None:
        out["units"] = tuple(str(u) for u in units)
    return out


def real_space(layer: Any) -> dict:
    """``scale`` (the real-space voxel size ``metadata["bcdi"]["voxel_size_nm"]``, nm) and ``units`` of
    objects phased from the intensity ``layer``; ``{}`` when the voxel size is not known."""
    vs = bcdi_meta(layer).get("voxel_size_nm")
    if vs is None or len(vs) != 3:
        return {}
    return {"scale": tuple(float(v) for v in vs), "units": "nm"}


def derived_bcdi(source: Any, /, **updates: Any) -> dict:
    """``metadata["bcdi"]`` of a layer derived from ``source``: a deep copy of the source's, updated.

    The voxel size, geometry and file of the source travel with the result; ``updates`` (``kind``...) win.
    """
    meta = bcdi_meta(source)
    try:
        meta = copy.deepcopy(meta)
    except (TypeError, copy.Error):  # something that cannot be copied (an open file...): copy the dict
        meta = dict(meta)
    return {**meta, **updates}


def put_layer(viewer: Any, name: str, data: np.ndarray, *, labels: bool = False, metadata: dict | None = None,
              **kwargs: Any) -> Any:
    """Add an Image (or Labels) layer called ``name``, or replace the data of the existing one.

    Parameters
    ----------
    viewer : napari.Viewer
        Where the layer goes.
    name : str
        The layer's name; an existing layer of that name is updated in place (``layer.data = data``).
    data : numpy.ndarray
        The new data (the caller's array, not copied).
    labels : bool
        A Labels layer (True) or an Image layer (False).
    metadata : dict, optional
        The layer's ``metadata`` (replaced on update).
    **kwargs
        Layer properties (``scale``, ``translate``, ``units``, ``colormap``, ``contrast_limits``...). On
        update all are set again except :data:`CREATE_ONLY` (opacity, gamma, rendering...).

    Returns
    -------
    napari.layers.Layer
        The new or updated layer.

    Raises
    ------
    BCDIError
        A layer of that name exists with the other type (Image vs Labels).
    """
    from napari.layers import Labels

    layer = find_layer(viewer, name)
    if layer is None:
        add = viewer.add_labels if labels else viewer.add_image
        extra = {} if metadata is None else {"metadata": metadata}
        return add(data, name=name, **extra, **kwargs)
    if isinstance(layer, Labels) != labels:
        raise BCDIError(f"a layer '{name}' of another type exists: rename or delete it")
    return _update_layer(layer, data, metadata, kwargs)


def _update_layer(layer: Any, data: Any, metadata: dict | None, kwargs: dict) -> Any:
    """New data (and metadata) for an existing layer; ``kwargs`` set except the :data:`CREATE_ONLY` ones."""
    layer.data = data
    if metadata is not None:
        layer.metadata = metadata
    for key, value in kwargs.items():
        if key not in CREATE_ONLY:
            setattr(layer, key, value)
    return layer


def put_surface(viewer: Any, name: str, data: tuple, *, metadata: dict | None = None, **kwargs: Any) -> Any:
    """Add a Surface layer called ``name`` (``data`` = (vertices, faces, values)), or replace the data of the
    existing one; ``kwargs`` as :func:`put_layer` (:data:`CREATE_ONLY` ones only at creation).

    Raises
    ------
    BCDIError
        A layer of that name exists and is not a Surface.
    """
    from napari.layers import Surface

    layer = find_layer(viewer, name)
    if layer is None:
        extra = {} if metadata is None else {"metadata": metadata}
        return viewer.add_surface(data, name=name, **extra, **kwargs)
    if not isinstance(layer, Surface):
        raise BCDIError(f"a layer '{name}' of another type exists: rename or delete it")
    return _update_layer(layer, data, metadata, kwargs)


# ---------------------------------------------------------------------------------------- reconstructions
#: endings of the layers that show one reconstruction: "<name> modulus", "<name> phase", "<name> support"
PART_SUFFIXES = (" modulus", " phase", " support")


def result_metadata(result: ReconstructionResult, kind: str) -> dict:
    """``metadata`` of a layer showing ``result`` (``kind``: modulus, phase, support...): the result itself
    (one object shared by the layers of a reconstruction) and, for the layers derived from it, its voxel size,
    geometry and data."""
    return {"bcdi": {"kind": kind, "result": result, "geometry": result.geometry, "data_layer": result.data_name,
                     "voxel_size_nm": None if result.voxel_size_nm is None else list(result.voxel_size_nm),
                     "source": result.source}}


def result_of(layer: Any, viewer: Any = None) -> ReconstructionResult | None:
    """The reconstruction a layer shows, or None.

    The :class:`~napari_bcdi_dl.core.types.ReconstructionResult` attached by the docks and the reader
    (``metadata["bcdi"]["result"]``); else, for a 3D complex image, a result made from its data; else, with
    ``viewer``, from a reader-style pair ``"<name> modulus"`` + ``"<name> phase"`` (and ``"<name> support"``)
    of another program. Arrays are the layers' own: copy them before changing or sending them to a worker.
    """
    meta = bcdi_meta(layer)
    res = meta.get("result")
    if isinstance(res, ReconstructionResult):
        return res
    data = getattr(layer, "data", None)
    if np.iscomplexobj(data) and getattr(data, "ndim", 0) == 3:
        obj = np.asarray(data, np.complex64)
    elif viewer is not None and getattr(layer, "name", "").endswith(" modulus"):
        base = layer.name[: -len(" modulus")]
        phase_layer = find_layer(viewer, base + " phase")
        if phase_layer is None or np.shape(phase_layer.data) != np.shape(data):
            return None
        obj = (np.asarray(data, np.float32) * np.exp(1j * np.asarray(phase_layer.data, np.float32))).astype(np.complex64)
    else:
        return None
    support = None
    if viewer is not None:
        base = next((layer.name[: -len(s)] for s in PART_SUFFIXES if layer.name.endswith(s)), layer.name)
        sup_layer = find_layer(viewer, base + " support")
        if sup_layer is not None and np.shape(sup_layer.data) == obj.shape:
            support = (np.asarray(sup_layer.data) != 0).astype(np.uint8)
    if support is None:
        support = np.ones(obj.shape, np.uint8)
    scale = tuple(float(v) for v in getattr(layer, "scale", (1.0,) * 3)[-3:])
    voxel = meta.get("voxel_size_nm") or (scale if any(abs(v - 1) > 1e-12 for v in scale) else None)
    geometry = meta.get("geometry")
    return ReconstructionResult(Reconstruction(obj, support, method="unknown"),
                                geometry=geometry if isinstance(geometry, Geometry) else None,
                                voxel_size_nm=None if voxel is None else tuple(float(v) for v in voxel),
                                data_name=meta.get("data_layer"), source=meta.get("source"))


# ------------------------------------------------------------------------------------------------- jobs
class JobSlot:
    """One job at a time for a widget.

    While a job runs the action ``buttons`` are disabled and ``cancel_button`` enabled; a second job is
    refused with an info notification. An optional ``progress_bar`` shows the job's progress (busy
    indicator until the first report).

    Parameters
    ----------
    title : str
        The widget's name, for the notification of a refused job.
    buttons : sequence of QPushButton
        Disabled while a job runs.
    cancel_button : QPushButton
        Enabled while a job runs.
    progress_bar : QProgressBar, optional
        Follows the job's progress.
    on_finished : callable, optional
        Called with no argument after every job (success, error or cancellation), once the buttons are back.
    """

    def __init__(self, title: str, buttons: Sequence[Any], cancel_button: Any, *, progress_bar: Any = None,
                 on_finished: Callable[[], Any] | None = None) -> None:
        self.title = title
        self.buttons = list(buttons)
        self.cancel_button = cancel_button
        self.progress_bar = progress_bar
        self.on_finished = on_finished
        self.job: Job | None = None
        self._shown: tuple[int, int] | None = None  # (percent, total) the progress bar shows
        # napari's first progress bar of a window costs 0.1-0.25 s of main thread: pay it now, when the dock
        # opens, rather than inside the first run (see warm_activity_dock)
        warm_activity_dock()

    @property
    def busy(self) -> bool:
        """True while a job runs."""
        return self.job is not None and self.job.running

    def refuse_if_busy(self) -> bool:
        """True (and an info notification) when a job runs already."""
        if self.busy:
            notify_info(f"{self.title}: busy with '{self.job.desc}'; wait or press Cancel")
            return True
        return False

    def start(self, func: Callable, *args: Any, desc: str, on_done: Callable[[Any], Any],
              **kwargs: Any) -> Job | None:
        """Run ``func(*args, **kwargs)`` through :func:`run_job`; None (and a notification) when busy."""
        if self.refuse_if_busy():
            return None
        if self.progress_bar is not None:
            self.progress_bar.setRange(0, 0)
            self._shown = None
        self.job = run_job(func, *args, desc=desc, on_done=on_done, **kwargs)
        if self.progress_bar is not None:
            self.job.progressed.connect(self._progressed)
        self.job.finished.connect(self._finished)
        for b in self.buttons:
            b.setEnabled(False)
        self.cancel_button.setEnabled(True)
        return self.job

    def cancel(self) -> None:
        """Ask the running job to stop at its next step."""
        if self.busy:
            self.job.cancel()

    def _progressed(self, done: int, total: int) -> None:
        """Show ``done / total``, touching the bar only when its integer percentage (or the total) changes:
        ``QProgressBar.setValue`` repaints synchronously, 17-35 ms in a window with a GL canvas on
        llvmpipe (50-90 ms while the worker holds the GIL). The last report (done == total) always shows."""
        total = max(int(total), 1)
        done = min(max(int(done), 0), total)
        shown = (100 * done // total, total)
        if shown == self._shown and done != total:
            return
        self._shown = shown
        if self.progress_bar.maximum() != total or self.progress_bar.minimum() != 0:
            self.progress_bar.setRange(0, total)
        if self.progress_bar.value() != done:
            self.progress_bar.setValue(done)

    def _finished(self) -> None:
        try:
            for b in self.buttons:
                b.setEnabled(True)
            self.cancel_button.setEnabled(False)
            if self.progress_bar is not None and self.progress_bar.maximum() == 0:
                self.progress_bar.setRange(0, 1)
            if self.on_finished is not None:
                self.on_finished()
        except RuntimeError:  # the widget was closed while the job ran
            pass


class HasJobSlot:
    """Mixin of the dock widgets that keep their :class:`JobSlot` as ``self.jobs``."""

    jobs: JobSlot

    @property
    def job(self) -> Job | None:
        """The last job started (running or done), or None."""
        return self.jobs.job

    @job.setter
    def job(self, job: Job | None) -> None:
        self.jobs.job = job

    def cancel(self) -> None:
        """Ask the running job to stop at its next step."""
        self.jobs.cancel()
