"""Creating and updating control layers: Canny edges from the picture, a pose figure, an imported
control image, and a sketch layer used as scribble control. Each is one undoable step."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from app import pose_edit
from app.background import Background, Task
from app.compose import composite
from app.document import Document
from app.geometry import Rect
from app.image_io import DEFAULT_PIXEL_LIMIT, ImageLoadError, load_rgba
from app.layers import ControlSettings, Layer, LayerKind
from app.raster import Raster
from inference.control_images import as_rgb, canny_edges
from inference.openpose import Person, Pose

log = logging.getLogger(__name__)

CONTROL_TYPES = (
    "canny", "scribble", "lineart", "openpose", "depth", "normal", "softedge", "seg", "reference",
)  # fmt: skip
REFERENCE = "reference"  # a reference image for an IP-Adapter (inference.ip_adapter), not a map


def _opaque(rgb: np.ndarray) -> np.ndarray:
    alpha = np.full((*rgb.shape[:2], 1), 255, np.uint8)
    return np.concatenate([rgb, alpha], axis=2)


def canny_pixels(doc: Document, low: float, high: float) -> np.ndarray:
    picture = composite(doc.layers, doc.rect)
    return _opaque(canny_edges(picture, low, high))


def add_canny_layer(doc: Document, low: float = 100, high: float = 200) -> Layer:
    """Edges of the visible picture as a new control layer (raises ControlImageError on bad
    thresholds before anything changes)."""
    pixels = canny_pixels(doc, low, high)
    settings = ControlSettings("canny", params={"low": float(low), "high": float(high)})
    return doc.add_layer(
        LayerKind.CONTROL, "Canny edges", raster=Raster(4, pixels), control=settings
    )


def update_canny(
    doc: Document, layer_id: int, low: float, high: float, pixels: np.ndarray | None = None
) -> None:
    """Recompute a Canny layer with new thresholds as one undo step. ``pixels``: the edges for
    these thresholds when the caller already has them (a live preview), else computed here."""
    layer = doc.layer(layer_id)
    if pixels is None:
        pixels = canny_pixels(doc, low, high)
    doc.history.beginMacro("Canny thresholds")
    try:
        doc.replace_pixels(layer_id, doc.rect, pixels, "Canny thresholds")
        assert layer.control is not None, "a Canny layer is a control layer"
        params = {**layer.control.params, "low": float(low), "high": float(high)}
        doc.set_layer_property(layer_id, "control", replace(layer.control, params=params))
    finally:
        doc.history.endMacro()


def add_control_image_layer(
    doc: Document,
    path: str | os.PathLike,
    control_type: str = "depth",
    pixel_limit: int = DEFAULT_PIXEL_LIMIT,
) -> Layer:
    """Import a depth map / line art / any image as a control layer, stretched to the canvas
    only at generation time (the resize mode decides how)."""
    if control_type not in CONTROL_TYPES:
        raise ImageLoadError(f"unknown control type {control_type!r}")
    pixels = load_rgba(path, pixel_limit)
    pixels[..., 3] = 255
    return doc.add_layer(
        LayerKind.CONTROL,
        f"{control_type.title()}: {Path(path).stem}",
        raster=Raster(4, pixels),
        control=ControlSettings(control_type),
    )


def add_reference_layer(
    doc: Document,
    path: str | os.PathLike,
    model_path: str | None = None,
    pixel_limit: int = DEFAULT_PIXEL_LIMIT,
) -> Layer:
    """A picture from disk as a reference layer: it guides the generation through an IP-Adapter
    (its style and content, or its style only) and is never part of the picture itself."""
    pixels = load_rgba(path, pixel_limit)
    return doc.add_layer(
        LayerKind.CONTROL,
        f"Reference: {Path(path).stem}",
        raster=Raster(4, pixels),
        control=ControlSettings(REFERENCE, model_path=model_path, params={"style_only": False}),
    )


def is_reference(layer: Layer) -> bool:
    return layer.control is not None and layer.control.control_type == REFERENCE


def is_ip_adapter_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an ``ip-adapter*.safetensors`` (read from its tensor names)."""
    from inference.ip_adapter import is_ip_adapter_keys

    file = Path(path).expanduser()
    if not file.is_file() or file.suffix.lower() != ".safetensors":
        return False
    try:
        from inference.library import read_header

        return is_ip_adapter_keys(list(read_header(file).tensors))
    except Exception:  # unreadable: not an IP-Adapter we could use
        return False


def with_model(settings: ControlSettings, path: str | None, encoders: list[str]) -> ControlSettings:
    """``settings`` using the model at ``path``. An IP-Adapter makes the layer a reference layer
    and brings the image encoder that fits it from ``encoders`` (the library's), unless its own
    ``image_encoder/`` sits beside it."""
    if path is None or not is_ip_adapter_file(path):
        return replace(settings, model_path=path)
    from inference.ip_adapter import pick_image_encoder

    params = {k: v for k, v in settings.params.items() if k != "image_encoder"}
    params.setdefault("style_only", False)
    encoder = pick_image_encoder(path, encoders)
    if encoder is not None:
        params["image_encoder"] = encoder
    return replace(settings, control_type=REFERENCE, model_path=path, params=params)


def add_figure_layer(doc: Document, box: Rect | None = None) -> Layer:
    """A pose layer holding one standing figure fitted to ``box`` (default: the selection, else
    the canvas with a margin)."""
    box = box or pose_edit.default_figure_box(doc)
    person = Person.standing(box.x, box.y, box.w, box.h)
    return pose_edit.add_pose_layer(doc, Pose(doc.width, doc.height, (person,)))


def set_layer_as_control(doc: Document, layer_id: int, control_type: str | None) -> None:
    """Use a sketch (or any raster) layer as control of ``control_type``; None stops using it."""
    layer = doc.layer(layer_id)
    if control_type is None:
        settings = replace(layer.control, enabled=False) if layer.control else None
    else:
        base = layer.control or ControlSettings(control_type)
        settings = replace(base, control_type=control_type, enabled=True)
    doc.set_layer_property(layer_id, "control", settings, "Use as control")


# ---- Canny thresholds as an interactive command -----------------------------------------------


def preview_edges(rgb: np.ndarray, low: float, high: float) -> np.ndarray:
    """Canny edges for a preview (run on the preview's worker thread)."""
    return canny_edges(rgb, low, high)


class PictureRgb:
    """The flattened picture as RGB, converted once per preview (a drag sends the same picture
    every time). Used on the worker thread only."""

    def __init__(self) -> None:
        self._cached: tuple[np.ndarray, np.ndarray] | None = None

    def rgb_of(self, picture: np.ndarray) -> np.ndarray:
        cached = self._cached
        if cached is not None and cached[0] is picture:
            return cached[1]
        if picture.ndim == 3 and picture.shape[2] == 4 and picture[..., 3].min() == 255:
            rgb = np.ascontiguousarray(picture[..., :3])  # opaque: what as_rgb gives, faster
        else:
            rgb = as_rgb(picture, what="image for Canny edges")
        self._cached = (picture, rgb)
        return rgb

    def forget(self) -> None:
        self._cached = None


class CannyPreview:
    """Changing a Canny layer's thresholds, interactively: an undo command in four verbs.

    ``begin`` (the constructor) flattens the picture once; :meth:`update` finds the edges for new
    thresholds off the UI thread (through ``background``: the newest thresholds win, results of
    older ones are dropped) and shows them in the layer, outside the history, as a pose drag is
    shown; :meth:`commit` records the thresholds shown as ONE undo step (the layer's old pixels
    are its "before"); :meth:`revert` puts the old pixels back byte for byte and leaves the
    history as it was. ``on_problem`` hears one-line messages (a locked layer, bad thresholds).
    """

    def __init__(
        self,
        doc: Document,
        layer_id: int,
        background: Background,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        layer = doc.layer(layer_id)
        if layer.control is None or layer.raster is None:
            raise ValueError(f"layer {layer.name!r} is not a Canny control layer")
        self.doc, self.layer_id = doc, layer_id
        self._background = background
        self._on_problem = on_problem or (lambda _text: None)
        self._picture = composite(doc.layers, doc.rect)  # the picture does not change meanwhile
        self._rgb = PictureRgb()
        self._before: np.ndarray | None = None  # the layer's pixels, taken at the first show
        self.shown: np.ndarray | None = None
        self.shown_thresholds: tuple[float, float] | None = None
        self.active = True

    @property
    def showing(self) -> bool:
        """Edges of this preview are in the layer now."""
        return self._before is not None

    def update(self, low: float, high: float) -> None:
        """Find and show the edges for (low, high); an older request still running is dropped."""
        if not self.active:
            return
        picture, rgb = self._picture, self._rgb

        def edges(_task: Task[np.ndarray]) -> np.ndarray:
            return _opaque(preview_edges(rgb.rgb_of(picture), low, high))

        self._background.submit(
            edges,
            on_done=lambda pixels: self._show(pixels, (low, high)),
            on_error=lambda error: self._on_problem(
                str(error) or f"Canny edges failed ({type(error).__name__})"
            ),
        )

    def commit(self, low: float, high: float) -> bool:
        """Record (low, high) and their edges as one undo step; False when nothing changed.
        Raises what ``update_canny`` raises (the document is then as before the preview)."""
        self._stop()
        layer = self._layer()
        if layer is None:
            return False
        if self._before is not None:
            # the old pixels go back silently so the undo step records them as "before";
            # update_canny (or the emit below) repaints the layer
            layer.raster.write(self.doc.rect, self._before)  # type: ignore[union-attr]
        ready = self.shown if self.shown_thresholds == (low, high) else None
        params = layer.control.params if layer.control is not None else {}
        committed = False
        try:
            if (params.get("low"), params.get("high")) != (low, high) and not layer.locked:
                update_canny(self.doc, self.layer_id, low, high, pixels=ready)
                committed = True
        finally:
            if self._before is not None and not committed:
                self.doc.pixels_changed.emit(self.layer_id, self.doc.rect)
            self._before = None
        return committed

    def revert(self) -> None:
        """Cancel: the layer gets its old pixels back; the history is untouched."""
        self._stop()
        before, self._before = self._before, None
        if before is not None and self._layer() is not None:
            self._write(before)

    def history_moved(self) -> None:
        """Undo / redo / another edit during the preview: it ends. Its pixels are put back
        unless that step already replaced them (or removed the layer)."""
        self._stop()
        before, self._before = self._before, None
        layer = self._layer()
        if before is None or layer is None or layer.raster is None:
            return
        if self.shown is not None and np.array_equal(layer.raster.read(self.doc.rect), self.shown):
            self._write(before)

    # ---- internals ------------------------------------------------------------------------

    def _stop(self) -> None:
        self.active = False
        self._background.cancel()  # a result still on its way is dropped
        self._rgb.forget()

    def _layer(self) -> Layer | None:
        try:
            return self.doc.layer(self.layer_id)
        except KeyError:
            return None

    def _show(self, pixels: np.ndarray, thresholds: tuple[float, float]) -> None:
        layer = self._layer()
        if not self.active or layer is None or layer.raster is None or layer.control is None:
            return
        if "low" not in layer.control.params:
            return
        if layer.locked:
            self._on_problem(locked_message(layer))
            return
        if self._before is None:
            self._before = layer.raster.read(self.doc.rect)
        self.shown, self.shown_thresholds = pixels, thresholds
        self._write(pixels)

    def _write(self, pixels: np.ndarray) -> None:
        layer = self.doc.layer(self.layer_id)
        assert layer.raster is not None
        layer.raster.write(self.doc.rect, pixels)
        try:
            self.doc.pixels_changed.emit(self.layer_id, self.doc.rect)
        except RuntimeError:  # the document's Qt side is gone (its window closed)
            log.debug("document deleted during a Canny preview")


def locked_message(layer: Layer) -> str:
    return f"Layer “{layer.name}” is locked; unlock it to change its edges."


# ---- depth from the picture, by a local depth-estimation model ---------------------------------

DEPTH_PREVIEW_JOB = -2  # the document preview's id while a depth estimate waits to be kept


def depth_pixels(doc: Document, folder: str | os.PathLike) -> np.ndarray:
    """The depth map of the visible picture (on white) as opaque grey RGBA, near = white."""
    from app.compose import flatten_rgb

    return depth_of(flatten_rgb(doc.layers, doc.rect), folder)


def depth_of(picture: np.ndarray, folder: str | os.PathLike) -> np.ndarray:
    from inference.depth import estimate_depth

    depth = estimate_depth(picture, folder)
    return _opaque(np.repeat(depth[..., None], 3, axis=2))


def add_depth_layer(
    doc: Document, folder: str | os.PathLike, pixels: np.ndarray | None = None
) -> Layer:
    """A depth control layer estimated from the picture (one undo step; its pixels stay
    editable like any layer's)."""
    pixels = depth_pixels(doc, folder) if pixels is None else pixels
    settings = ControlSettings("depth", params={"estimator": Path(folder).name})
    return doc.add_layer(LayerKind.CONTROL, "Depth", raster=Raster(4, pixels), control=settings)


class DepthEstimate:
    """Depth from the picture as an interactive command.

    :meth:`start` flattens the picture and estimates its depth off the UI thread (through
    ``background``); the map is then shown as the document's preview, outside the history
    (``on_ready`` hears it). :meth:`commit` keeps it as ONE undo step: a new depth layer, or with
    ``layer_id`` new pixels for that layer; :meth:`revert` drops it and leaves the document byte
    for byte as it was. ``on_problem`` hears one-line messages (no model, a failed estimate).
    """

    def __init__(
        self,
        doc: Document,
        folder: str | os.PathLike,
        background: Background,
        layer_id: int | None = None,
        on_problem: Callable[[str], None] | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.doc, self.folder, self.layer_id = doc, folder, layer_id
        self._background = background
        self._on_problem = on_problem or (lambda _text: None)
        self._on_ready = on_ready or (lambda: None)
        self.pixels: np.ndarray | None = None
        self.active = False

    @property
    def ready(self) -> bool:
        return self.pixels is not None

    def start(self) -> None:
        from app.compose import flatten_rgb

        self.active = True
        picture = flatten_rgb(self.doc.layers, self.doc.rect)  # a snapshot: later edits don't count
        folder = self.folder

        def estimate(_task: Task[np.ndarray]) -> np.ndarray:
            return depth_of(picture, folder)

        self._background.submit(estimate, on_done=self._show, on_error=self._failed)

    def commit(self) -> Layer | None:
        """Keep the estimate (one undo step); None when there is none (yet)."""
        self._stop()
        pixels, self.pixels = self.pixels, None
        if pixels is None:
            return None
        if self.layer_id is None:
            return add_depth_layer(self.doc, self.folder, pixels)
        layer = self.doc.layer(self.layer_id)
        self.doc.replace_pixels(self.layer_id, self.doc.rect, pixels, "Depth from picture")
        return layer

    def revert(self) -> None:
        self._stop()
        self.pixels = None

    def _stop(self) -> None:
        self.active = False
        self._background.cancel()
        try:
            self.doc.clear_preview(DEPTH_PREVIEW_JOB)
        except RuntimeError:  # the document's Qt side is gone
            log.debug("document deleted during a depth preview")

    def _show(self, pixels: np.ndarray) -> None:
        if not self.active:
            return
        self.pixels = pixels
        self.doc.show_preview(DEPTH_PREVIEW_JOB, self.doc.rect, pixels)
        self._on_ready()

    def _failed(self, error: BaseException) -> None:
        self.active = False
        self._on_problem(str(error) or f"depth estimation failed ({type(error).__name__})")
