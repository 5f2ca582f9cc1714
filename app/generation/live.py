"""Live painting: every finished stroke re-renders the frame with a few-step model.

:class:`LiveMode` drives one :class:`~app.generation.session.GenerationSession` (its document,
prompt, strength, model, LoRAs) through the session's :class:`~app.generation.jobs.JobController`,
so live jobs are ordinary jobs (same engine, same previews, same cancel), with one difference:
their finished layer is not landed but shown as the **live picture** through the document's
transient preview layer (outside the undo history, never saved, never fed into a job). ``apply()``
lands the picture shown as one undoable RESULT layer with its recipe.

Scheduling ("never pile up"): at most one live job runs and one request waits. A change inside
the running job's area cancels it at its next step (its input is stale); the waiting request is
only a flag, built from the document when it starts, so ten strokes replace each other instead
of queueing ten jobs. A request that follows a cancelled one, or a stroke that ends within
``SETTLE_MS`` of the one before, waits until the strokes have paused that long; an isolated
stroke starts at once. A request whose input equals the frame
shown (a change outside the frame, a hidden layer) starts nothing.

Few-step models (LCM, Turbo, Lightning, Hyper-SD; inference.library.few_step): on start, the
session's sampler, steps and CFG are set to the model's preset and put back when live ends.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.document import Document
from app.generation.request import (
    GenerationParams,
    PlannedJob,
    RequestBuildError,
    Workflow,
    build_request,
)
from app.generation.results import land_layers
from app.geometry import Rect
from app.layers import Layer, LayerKind
from inference.api import Request
from inference.library.few_step import (
    FEW_STEP_OFF,
    FewStep,
    FewStepPreset,
    detect_few_step,
    parse_few_step,
    preset_for,
)

if TYPE_CHECKING:
    from app.generation.session import GenerationSession

log = logging.getLogger(__name__)

LIVE_PREVIEW_ID = -2  # owner id of the live picture in doc.preview (staging uses -1)
SETTLE_MS = 40  # after a stale job was cancelled, wait for the strokes to pause this long
PARAMS_DELAY_MS = 250  # prompt typing, slider drags: one frame when they pause
RENDER_NAMES = frozenset(
    {"prompt", "negative_prompt", "model", "sampler", "steps", "guidance", "strength", "seed",
     "loras", "resolution", "padding", "mask_blur", "workflow"}
)  # fmt: skip
MAX_SEED = 2**31 - 1


@dataclass(frozen=True, eq=False)
class LiveFrame:
    """One finished live picture: the RESULT layer it would land as, and when it came."""

    job_id: int
    layer: Layer
    requested_at: float  # time.perf_counter() of the change it answers
    shown_at: float


@dataclass(frozen=True, eq=False)
class _Input:
    """What a live job was built from, to tell whether a new request would change anything."""

    request: Request
    origin: Rect

    def same_as(self, other: _Input | None) -> bool:
        if other is None or other.origin != self.origin:
            return False
        a, b = self.request, other.request
        plain = (
            "mode", "prompt", "negative_prompt", "seed", "steps", "guidance", "strength",
            "sampler", "width", "height", "model_path", "model_size", "crop_box", "mask_blur",
            "padding", "loras", "vae_path",
        )  # fmt: skip
        if any(getattr(a, name) != getattr(b, name) for name in plain):
            return False
        if not (_same(a.image, b.image) and _same(a.mask, b.mask)):
            return False
        if len(a.controls) != len(b.controls):
            return False
        settings = ("model_path", "control_type", "weight", "start", "end", "resize_mode")
        for x, y in zip(a.controls, b.controls, strict=True):
            if any(getattr(x, name) != getattr(y, name) for name in settings):
                return False
            if not _same(x.image, y.image):
                return False
        return True


class LiveMode(QObject):
    """Live painting on one generation session."""

    active_changed = Signal(bool)
    frame_shown = Signal(int)  # job id of the live picture now shown
    status = Signal(str)  # one line for the panel: "Rendering…", "Live", an error

    def __init__(self, session: GenerationSession) -> None:
        super().__init__(session)
        self.session = session
        self.jobs = session.jobs
        self.active = False
        self.seed = 0
        self.frame: LiveFrame | None = None
        self.preset: FewStepPreset | None = None
        self.jobs_submitted = 0  # live jobs since live mode started
        self._doc: Document | None = None
        self._saved: tuple[object, int, float] | None = None  # sampler, steps, guidance
        self._running: int | None = None
        self._running_input: _Input | None = None
        self._running_since = 0.0
        self._frame_input: _Input | None = None
        self._pending = False
        self._last_change = 0.0
        self._dirty: list[Rect] = []
        self._structural = False
        self._quiet = False  # our own edits (Apply) are not changes to answer
        self._settle = QTimer(self, singleShot=True)
        self._settle.timeout.connect(self._submit)
        self._params_timer = QTimer(self, singleShot=True, interval=PARAMS_DELAY_MS)
        self._params_timer.timeout.connect(self.request_frame)
        self._coalesce = QTimer(self, singleShot=True, interval=0)
        self._coalesce.timeout.connect(self._document_changed)

    # ---- on / off ---------------------------------------------------------------------------

    def start(self) -> bool:
        """Turn live mode on and render the frame once; False (with a status line) when the
        session has no document."""
        if self.active:
            return True
        doc = self.session.doc
        if doc is None:
            self.status.emit("Open or create a picture first.")
            return False
        values = self.session.values
        self.seed = random.randint(0, MAX_SEED) if values.random_seed else values.seed
        self._refresh_preset()
        self._doc = doc
        doc.history.indexChanged.connect(self._history_changed)
        doc.layers_changed.connect(self._structure_changed)
        doc.selection_changed.connect(self._structure_changed)
        doc.pixels_changed.connect(self._pixels_changed)
        self.session.changed.connect(self._params_changed)
        self.jobs.cancelled.connect(self._job_cancelled)
        self.jobs.failed.connect(self._job_failed)
        self.active = True
        self.jobs_submitted = 0
        self.active_changed.emit(True)
        self.request_frame()
        return True

    def stop(self) -> None:
        """Turn live mode off: the running job is cancelled, the live picture goes, the
        sampler/steps/CFG the user had come back."""
        if not self.active:
            return
        self.active = False
        self._settle.stop()
        self._params_timer.stop()
        self._coalesce.stop()
        self._pending = False
        doc = self._doc
        connections: list[tuple[Any, Any]] = [
            (self.session.changed, self._params_changed),
            (self.jobs.cancelled, self._job_cancelled),
            (self.jobs.failed, self._job_failed),
        ]
        if doc is not None:
            connections += [
                (doc.history.indexChanged, self._history_changed),
                (doc.layers_changed, self._structure_changed),
                (doc.selection_changed, self._structure_changed),
                (doc.pixels_changed, self._pixels_changed),
            ]
            doc.clear_preview(LIVE_PREVIEW_ID)
        for signal, slot in connections:
            with contextlib.suppress(RuntimeError, TypeError):
                signal.disconnect(slot)
        if self._running is not None:
            self.jobs.cancel(self._running)
        self._running = self._running_input = self._frame_input = None
        self.frame = None
        self._doc = None
        self._restore_settings()
        self.preset = None
        self.active_changed.emit(False)
        self.status.emit("Live off")

    def toggle(self) -> bool:
        if self.active:
            self.stop()
        else:
            self.start()
        return self.active

    # ---- few-step models --------------------------------------------------------------------

    def few_step_preset(self) -> FewStepPreset | None:
        """The preset of the session's model: the user's mark wins, then an enabled few-step
        LoRA (LCM/Lightning/Hyper LoRAs make any checkpoint few-step), then what the library
        read from the checkpoint's name and metadata."""
        values = self.session.values
        model = values.model
        if model.path is None:
            return None
        marks = self._marks()
        mark = marks.get(model.path)
        if mark == FEW_STEP_OFF:
            return None
        if mark is not None and parse_few_step(mark) is not None:
            return preset_for(mark, model.name)
        for path, _weight, on in values.loras:
            kind = parse_few_step(marks.get(path)) or self._library_kind(path)
            if on and kind is not None:
                return preset_for(kind, path.rsplit("/", 1)[-1])
        kind = self._library_kind(model.path) or detect_few_step(model.name)
        return preset_for(kind, model.name) if kind is not None else None

    def model_mark(self) -> str | None:
        """The user's few-step choice for the session's model (a FewStep value or "off");
        None: automatic (the library decides)."""
        path = self.session.values.model.path
        return self._marks().get(path) if path is not None else None

    def mark_model(self, kind: str | None) -> None:
        """Remember in the settings that the session's model is ``kind`` (a FewStep value),
        not few-step ("off"), or automatic (None); a running live mode follows at once."""
        store, path = self.session._store, self.session.values.model.path
        if store is None or path is None:
            return
        marks = self._marks()
        marks.pop(path, None)
        if kind is not None:
            marks[path] = kind
        store.update(few_step_marks=tuple(marks.items()))
        if self.active:
            self._refresh_preset()

    def _marks(self) -> dict[str, str]:
        store = self.session._store
        return dict(store.settings.few_step_marks) if store is not None else {}

    def _library_kind(self, path: str) -> FewStep | None:
        library = self.session.library
        entry = library.entry(path) if library is not None else None
        if entry is not None and entry.few_step:
            return parse_few_step(entry.few_step)
        return detect_few_step(path.rsplit("/", 1)[-1])

    def _refresh_preset(self) -> None:
        """Use the preset of the model chosen now: the user's sampler/steps/CFG are saved the
        first time a preset replaces them and come back when no preset applies any more."""
        preset = self.few_step_preset()
        if preset == self.preset:
            return
        self.preset = preset
        if preset is None:
            self._restore_settings()
            return
        if self._saved is None:
            values = self.session.values
            self._saved = (values.sampler, values.steps, values.guidance)
        self.session.update(sampler=preset.sampler, steps=preset.steps, guidance=preset.guidance)

    def _restore_settings(self) -> None:
        if self._saved is not None:
            sampler, steps, guidance = self._saved
            self._saved = None
            self.session.update(sampler=sampler, steps=steps, guidance=guidance)

    # ---- changes -----------------------------------------------------------------------------

    def _pixels_changed(self, _layer_id: int, rect: object) -> None:
        if isinstance(rect, Rect):
            self._dirty.append(rect)

    def _structure_changed(self) -> None:
        self._structural = True
        self._coalesce.start()

    def _history_changed(self, _index: int) -> None:
        self._coalesce.start()  # a macro or a stroke with a new layer: one change

    def _params_changed(self, names: frozenset[str]) -> None:
        if names & {"model", "loras"}:
            self._refresh_preset()  # another model or LoRA: its own preset, or the user's values
        if names & RENDER_NAMES:
            self._params_timer.start()

    def _document_changed(self) -> None:
        if not self.active or self._quiet:
            self._forget_changes()
            return
        self.request_frame()

    def _forget_changes(self) -> None:
        self._dirty.clear()
        self._structural = False

    def _stale(self) -> bool:
        """Whether the changes since the running job started touch its area."""
        if self._running_input is None:
            return False
        if self._structural or not self._dirty:
            return True  # a layer/selection change or an edit that said no rectangle
        area = self._running_input.origin
        return any(not rect.intersected(area).is_empty for rect in self._dirty)

    def request_frame(self) -> None:
        """Ask for a frame of the document as it is now (strokes call this through the
        history; scripts and tests may call it directly)."""
        if not self.active:
            return
        now = time.perf_counter()
        rapid = now - self._last_change < SETTLE_MS / 1000  # strokes in quick succession
        self._last_change = now
        if self._running is not None:
            self._pending = True
            if self._stale():
                self.jobs.cancel(self._running)  # stops at its next step
            self._forget_changes()
            return
        if self._settle.isActive() or rapid:
            self._settle.start(SETTLE_MS)  # still painting: the timer follows the last stroke
            return
        self._submit()

    # ---- jobs ------------------------------------------------------------------------------

    def _params(self) -> GenerationParams:
        values = self.session.values
        params = self.session.params()
        return replace(
            params, seed=self.seed, batch_size=1, workflow=self._workflow(values.workflow)
        )

    def _workflow(self, override: Workflow | None) -> Workflow:
        """img2img of the frame: the session's generation frame when it has one (the request
        takes it from ``session.params()``), else the selection, else the whole canvas (an
        inpaint chosen in the panel stays an inpaint)."""
        doc = self._doc
        if override is Workflow.INPAINT:
            return override
        frame = self.session.frame
        if frame is not None and frame.rect is not None:
            return Workflow.IMG2IMG  # of what the frame covers
        if doc is not None and doc.selection_mask() is not None:
            return Workflow.IMG2IMG_SELECTION
        return Workflow.IMG2IMG

    def _submit(self) -> None:
        self._pending = False
        doc = self._doc
        if not self.active or doc is None or self._running is not None:
            return
        requested_at = self._last_change
        self._forget_changes()
        try:
            plan: PlannedJob = build_request(doc, self._params())
        except RequestBuildError as error:
            self.status.emit(str(error))
            return
        snapshot = _Input(plan.request, plan.origin)
        if snapshot.same_as(self._frame_input):
            self.status.emit("Live")
            return  # nothing in the frame changed: the picture shown is current
        self._running = self.jobs.submit(doc, plan, on_result=self._job_finished)
        self._running_input = snapshot
        self._running_since = requested_at
        self.jobs_submitted += 1
        self.status.emit("Rendering…")

    def _job_finished(self, job_id: int, layers: list[Layer]) -> None:
        if job_id != self._running or not layers or self._doc is None:
            return
        self._running = None
        self._frame_input = self._running_input
        self._running_input = None
        self.frame = LiveFrame(job_id, layers[0], self._running_since, time.perf_counter())
        self._show_frame()
        self.frame_shown.emit(job_id)
        self.status.emit("Live")
        self._after_job()

    def _job_cancelled(self, job_id: int) -> None:
        if job_id != self._running:
            return
        self._running = self._running_input = None
        self._show_frame()  # the step preview went with the job: the last picture again
        self._after_job()

    def _job_failed(self, job_id: int, message: str) -> None:
        if job_id != self._running:
            return
        self._running = self._running_input = None
        self._show_frame()
        self.status.emit(message)
        self._after_job()

    def _after_job(self) -> None:
        if not self._pending or not self.active:
            return
        wait = self._last_change + SETTLE_MS / 1000 - time.perf_counter()
        self._settle.start(max(0, round(wait * 1000)))

    def _show_frame(self) -> None:
        doc, frame = self._doc, self.frame
        if doc is None or frame is None or frame.layer.raster is None:
            return
        raster = frame.layer.raster
        doc.show_preview(LIVE_PREVIEW_ID, raster.rect, raster.data)

    @property
    def busy(self) -> bool:
        return self._running is not None or self._pending or self._settle.isActive()

    # ---- apply -------------------------------------------------------------------------------

    def apply(self, new_layer: bool = False) -> Layer | None:
        """Land the live picture shown as one undoable RESULT layer with its recipe (pixels
        equal to the picture). ``new_layer``: also add an empty sketch layer above it, in the
        same step, so painting goes on over the result. None when there is no picture yet."""
        doc, frame = self._doc, self.frame
        if doc is None or frame is None:
            return None
        if self._running is not None:
            self.jobs.cancel(self._running)  # its input no longer holds: the result changes it
        layer = frame.layer.clone()
        layer.name = f"Live · {layer.name}"
        self._quiet = True
        try:
            doc.history.beginMacro(f"Apply live picture {layer.name}")
            try:
                land_layers(doc, [layer], f"Apply {layer.name}")
                if new_layer:
                    doc.add_layer(LayerKind.SKETCH)  # what the pen paints on
            finally:
                doc.history.endMacro()
        finally:
            self._quiet = False
        self._coalesce.stop()
        self._forget_changes()
        doc.clear_preview(LIVE_PREVIEW_ID)
        self.frame = None
        self._frame_input = None
        self.status.emit("Applied")
        return layer


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.array_equal(a, b))
