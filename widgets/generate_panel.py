"""The generate panel: a view of the current document's generation session.

Every field is bound to :class:`app.generation.session.GenerationSession` (one per document,
handed out by :class:`~app.generation.session.GenerationSessions`): an edit sets the session's
value, a change of the session (a recipe applied, a seed drawn, another document shown, new
defaults in the settings) shows in the fields. The panel keeps no parameters of its own and saves
nothing: the session writes its state into the document. The mode it shows is recomputed from
the current document; Generate is ``session.generate()``. Nothing here waits on the engine.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.document import Document
from app.frame import frame_of
from app.generation.jobs import JobController, JobState
from app.generation.request import (
    FRAME_HINTS,
    GenerationParams,
    RequestBuildError,
    ResolutionPolicy,
    Workflow,
    active_control_layers,
    planned_workflow,
)
from app.generation.session import (
    MAX_SEED,
    STATE_KEY,
    GenerationSession,
    GenerationSessions,
    ModelChoice,
    PromptPair,
    model_choice,
)
from app.library import Base, ModelLibrary
from app.settings import SettingsStore
from inference.api import Sampler
from widgets.live_controls import LiveControls
from widgets.lora_picker import LoraPicker

log = logging.getLogger(__name__)

CLASSIC_LABEL = "Built-in classic (no model)"
CLASSIC_IGNORES_LORAS = "The built-in classic engine ignores LoRAs: choose a model to use them."
QUEUE_TEXT_PX = 230
MODE_HINTS = {
    Workflow.INPAINT: "the inpaint mask has pixels",
    Workflow.SKETCH: "the active layer is a sketch",
    Workflow.IMG2IMG_SELECTION: "an area is selected",
    Workflow.IMG2IMG: "the whole picture",
    Workflow.TXT2IMG: "the canvas is empty",
}

DocumentProvider = Callable[[], Document | None]


class GeneratePanel(QWidget):
    status_message = Signal(str)  # short text for the main window's status bar

    def __init__(
        self,
        documents: DocumentProvider,
        jobs: JobController,
        model_picker: QWidget | None = None,
        parent: QWidget | None = None,
        *,
        store: SettingsStore | None = None,
        scanner: ModelLibrary | None = None,
        sessions: GenerationSessions | None = None,
    ) -> None:
        """``store``: the user's settings; when given, the panel starts from its default sampler,
        steps and guidance, follows changes to them, and keeps its recent prompts there so they
        survive restarts. Without it the recent prompts live only in the documents.

        ``scanner``: the model library whose LoRAs the LoRA list offers; by default the model
        picker's own. Without a library there is no LoRA list and requests carry no LoRAs.

        ``sessions``: where the documents' sessions come from (the workspace shares one with
        everything else that generates); by default the panel makes its own."""
        super().__init__(parent)
        self.setObjectName("generatePanel")
        self._documents = documents
        self.jobs = jobs
        self._doc: Document | None = None
        self._detected: Workflow | None = None
        self._message_workflow: Workflow | None = None  # the mode a request error was about
        self._syncing = False  # showing the session's values: the fields' signals are not edits
        self._shown_once = False
        library = scanner or _picker_library(model_picker)
        self.sessions = sessions or GenerationSessions(
            jobs, library=library, store=store, parent=self
        )
        self.session: GenerationSession = self.sessions.activate(documents())
        self.session.changed.connect(self._show_values)
        self._build(model_picker, library)
        self._mode_timer = QTimer(self, singleShot=True, interval=120)
        self._mode_timer.timeout.connect(self._refresh_mode)
        self._connect_jobs()
        self._bind_fields()
        if self.model_picker is not None or self.model_combo is not None:
            self._take_picked_model()  # the picker shows the app's model: the session takes it
        self.refresh_document()

    # ---- construction -------------------------------------------------------------------

    def _build(self, model_picker: QWidget | None, scanner: ModelLibrary | None) -> None:
        self.mode_label = QLabel(self)
        self.mode_label.setObjectName("modeLabel")
        self.mode_label.setWordWrap(True)
        self.mode_combo = QComboBox(self)
        self.mode_combo.addItem("Automatic", None)
        for workflow in Workflow:
            self.mode_combo.addItem(workflow.value, workflow.value)
        self.mode_combo.setToolTip("Generate follows the document; choose a mode to override it")

        self.prompt_edit = QPlainTextEdit(self)
        self.prompt_edit.setPlaceholderText("Describe what to paint…")
        _fit_lines(self.prompt_edit, 3)  # it scrolls beyond; the settings get the height
        self.negative_edit = QPlainTextEdit(self)
        self.negative_edit.setPlaceholderText("Negative prompt: what to avoid")
        _fit_lines(self.negative_edit, 2)
        self.history_button = QToolButton(self)
        self.history_button.setText("Recent")
        self.history_button.setToolTip("Recent prompts")
        self.history_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.history_menu = QMenu(self.history_button)
        self.history_button.setMenu(self.history_menu)
        self.history_menu.aboutToShow.connect(self._fill_history_menu)

        self.model_picker = model_picker
        self.model_combo: QComboBox | None = None
        if model_picker is None:
            self.model_combo = QComboBox(self)
            self.model_combo.addItem(CLASSIC_LABEL, None)
        self.lora_picker: LoraPicker | None = None
        if scanner is not None:
            self.lora_picker = LoraPicker(scanner, self)

        self.sampler_combo = QComboBox(self)
        for sampler in Sampler:
            self.sampler_combo.addItem(sampler.value, sampler.value)
        self.steps_spin = _spin(1, 500, 20, self)  # the ranges of the settings' defaults
        self.guidance_spin = _dspin(0.0, 50.0, 7.0, 0.5, self)
        self.strength_spin = _dspin(0.0, 1.0, 0.75, 0.05, self)
        self.seed_spin = _spin(0, MAX_SEED, 0, self)
        self.random_seed_check = QCheckBox("Random", self)
        self.random_seed_check.setChecked(True)
        self.reuse_seed_button = QToolButton(self)
        self.reuse_seed_button.setText("Reuse last")
        self.reuse_seed_button.setToolTip("Use the seed of the last generation")
        self.batch_spin = _spin(1, 16, 1, self)
        self.resolution_combo = QComboBox(self)
        for policy in ResolutionPolicy:
            self.resolution_combo.addItem(policy.value, policy.value)
        self.padding_spin = _spin(0, 512, 32, self)
        self.padding_spin.setSuffix(" px")
        self.mask_blur_spin = _spin(0, 64, 4, self)
        self.mask_blur_spin.setSuffix(" px")

        self.generate_button = QPushButton("Generate", self)
        self.generate_button.setToolTip("Generate (Ctrl+Enter)")
        self.generate_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Cancel the running job (Esc)")
        self.cancel_button.setEnabled(False)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setFixedWidth(110)
        self.progress_label = QLabel("Ready", self)
        self.progress_label.setMinimumWidth(40)  # long step texts elide, never widen the dock
        self.message_label = QLabel(self)
        self.message_label.setObjectName("generateMessage")
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet("color: #e0605e;")
        self.message_label.hide()
        self.queue_list = QListWidget(self)
        self.queue_list.setMaximumHeight(110)
        self.queue_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.controls_list = QListWidget(self)
        self.controls_list.setMaximumHeight(90)
        self.controls_label = QLabel("Control layers", self)

        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.random_seed_check)
        seed_row.addWidget(self.reuse_seed_button)
        mode_row = QHBoxLayout()
        mode_row.addWidget(self.mode_label, 1)
        mode_row.addWidget(self.mode_combo)
        prompt_row = QHBoxLayout()
        prompt_row.addWidget(QLabel("Prompt", self), 1)
        prompt_row.addWidget(self.history_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.cancel_button)

        form = QFormLayout()
        form.addRow("Sampler", self.sampler_combo)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Guidance", self.guidance_spin)
        form.addRow("Strength", self.strength_spin)
        form.addRow("Seed", seed_row)
        form.addRow("Batch count", self.batch_spin)
        form.addRow("Resolution", self.resolution_combo)
        form.addRow("Padding", self.padding_spin)
        form.addRow("Mask blur", self.mask_blur_spin)

        # The settings scroll; Generate/Cancel and the progress stay pinned below, always visible.
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        if self.model_picker is not None:
            layout.addWidget(self.model_picker)
        else:
            model_row = QFormLayout()
            model_row.addRow("Model", self.model_combo)
            layout.addLayout(model_row)
        if self.lora_picker is not None:
            layout.addWidget(self.lora_picker)
        layout.addLayout(form)
        layout.addWidget(self.controls_label)
        layout.addWidget(self.controls_list)
        layout.addWidget(QLabel("Queue", body))
        layout.addWidget(self.queue_list)
        layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(
            body.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width()
        )
        outer = QVBoxLayout(self)
        for row in (mode_row, prompt_row):  # the mode and prompts never scroll away
            outer.addLayout(row)
        outer.addWidget(self.prompt_edit)
        outer.addWidget(self.negative_edit)
        outer.addWidget(scroll, 1)
        outer.addLayout(buttons)
        outer.addWidget(LiveControls(self.sessions, self))  # live painting (widgets/live_controls)
        progress_row = QHBoxLayout()  # one line: the text, then the bar
        progress_row.addWidget(self.progress_label, 1)
        progress_row.addWidget(self.progress_bar)
        outer.addLayout(progress_row)
        outer.addWidget(self.message_label)

        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.reuse_seed_button.clicked.connect(self.reuse_last_seed)
        self.seed_spin.setEnabled(False)
        for sequence in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = QShortcut(QKeySequence(sequence), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(self.generate)
        self.cancel_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self.cancel_shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        self.cancel_shortcut.activated.connect(self.cancel)
        self.cancel_shortcut.setEnabled(False)  # Esc stays with the canvas unless a job runs

    # ---- binding to the session ------------------------------------------------------------

    def _bind_fields(self) -> None:
        """Each field's edit sets its session value (the reverse is :meth:`_show_values`)."""
        edit = self._edit
        self.prompt_edit.textChanged.connect(lambda: edit(prompt=self.prompt_edit.toPlainText()))
        self.negative_edit.textChanged.connect(
            lambda: edit(negative_prompt=self.negative_edit.toPlainText())
        )
        self.sampler_combo.currentIndexChanged.connect(
            lambda _i: edit(sampler=Sampler(self.sampler_combo.currentData()))
        )
        self.steps_spin.valueChanged.connect(lambda value: edit(steps=value))
        self.guidance_spin.valueChanged.connect(lambda value: edit(guidance=value))
        self.strength_spin.valueChanged.connect(lambda value: edit(strength=value))
        self.seed_spin.valueChanged.connect(lambda value: edit(seed=value))
        self.random_seed_check.toggled.connect(lambda on: edit(random_seed=on))
        self.batch_spin.valueChanged.connect(lambda value: edit(batch_size=value))
        self.resolution_combo.currentIndexChanged.connect(
            lambda _i: edit(resolution=ResolutionPolicy(self.resolution_combo.currentData()))
        )
        self.padding_spin.valueChanged.connect(lambda value: edit(padding=value))
        self.mask_blur_spin.valueChanged.connect(lambda value: edit(mask_blur=value))
        self.mode_combo.currentIndexChanged.connect(lambda _i: edit(workflow=self._override()))
        for name in ("checkpoint_changed", "vae_changed"):
            signal = getattr(self.model_picker, name, None)
            if signal is not None:
                signal.connect(lambda _entry: self._take_picked_model())
        if self.model_combo is not None:
            self.model_combo.currentIndexChanged.connect(lambda _i: self._take_picked_model())
        if self.lora_picker is not None:
            self.lora_picker.changed.connect(
                lambda: edit(loras=tuple(tuple(row) for row in self.lora_picker.rows_state()))
            )

    def _edit(self, **changes: Any) -> None:
        if not self._syncing:
            self.session.update(**changes)

    def _take_picked_model(self) -> None:
        if not self._syncing:
            self.session.update(model=self._picked_model())

    def _picked_model(self) -> ModelChoice:
        """The model the picker (or the fallback combobox) shows."""
        if self.model_picker is not None:
            entry = self.model_picker.checkpoint()
            if entry is None:
                return ModelChoice()
            return model_choice(entry, self.model_picker.vae_path())
        data = self.model_combo.currentData() if self.model_combo is not None else None
        if not data:
            return ModelChoice()
        return ModelChoice(data["path"], data["name"], data["hash"], int(data["native"]))

    def _bind_session(self, session: GenerationSession) -> None:
        if session is self.session:
            return
        with contextlib.suppress(RuntimeError, TypeError):
            self.session.changed.disconnect(self._show_values)
        self.session = session
        session.changed.connect(self._show_values)

    def _show_values(self, names: frozenset[str] | None = None) -> None:
        """Show the session's values (``names``: only those) in the fields."""
        v = self.session.values
        show = (lambda name: True) if names is None else names.__contains__
        self._syncing = True
        try:
            if show("prompt") and self.prompt_edit.toPlainText() != v.prompt:
                self.prompt_edit.setPlainText(v.prompt)
            if show("negative_prompt") and self.negative_edit.toPlainText() != v.negative_prompt:
                self.negative_edit.setPlainText(v.negative_prompt)
            if show("sampler"):
                _select_data(self.sampler_combo, v.sampler)
            if show("steps"):
                self.steps_spin.setValue(v.steps)
            if show("guidance"):
                self.guidance_spin.setValue(v.guidance)
            if show("strength"):
                self.strength_spin.setValue(v.strength)
            if show("seed"):
                self.seed_spin.setValue(min(v.seed, MAX_SEED))
            if show("random_seed"):
                self.random_seed_check.setChecked(v.random_seed)
                self.seed_spin.setEnabled(not v.random_seed)
            if show("batch_size"):
                self.batch_spin.setValue(v.batch_size)
            if show("resolution"):
                _select_data(self.resolution_combo, v.resolution)
            if show("padding"):
                self.padding_spin.setValue(v.padding)
            if show("mask_blur"):
                self.mask_blur_spin.setValue(v.mask_blur)
            if show("workflow"):
                _select_data(self.mode_combo, v.workflow)
            if show("loras") and self.lora_picker is not None:
                self.lora_picker.set_loras(v.loras)
            model_refused = show("model") and not self._show_model(v.model)
        finally:
            self._syncing = False
        if model_refused:  # the picker cannot show that model: the session follows the picker
            self.session.update(model=self._picked_model())
        if show("workflow"):
            self._show_mode()
        if show("model") or show("loras"):
            self._follow_checkpoint()

    def _show_model(self, model: ModelChoice) -> bool:
        """Select ``model`` in the picker; False when the picker has no such model."""
        if self.model_picker is not None:
            if self.model_picker.checkpoint_path() == model.path:
                return True
            return bool(self.model_picker.set_checkpoint_path(model.path))
        if self.model_combo is None:
            return True
        for row in range(self.model_combo.count()):
            data = self.model_combo.itemData(row)
            if (data["path"] if data else None) == model.path:
                self.model_combo.setCurrentIndex(row)
                return True
        return model.path is None

    def _follow_checkpoint(self) -> None:
        """Offer the LoRAs of the chosen checkpoint's base; say when the classic engine will
        ignore them."""
        if self.lora_picker is None:
            return
        model = self.session.values.model
        base = None
        if model.base is not None:
            with contextlib.suppress(ValueError):
                base = Base(model.base)
        self.lora_picker.set_base(base)
        classic = model.path is None
        self.lora_picker.set_ignored_reason(CLASSIC_IGNORES_LORAS if classic else None)

    def _connect_jobs(self) -> None:
        jobs = self.jobs
        jobs.queue_changed.connect(self._refresh_queue)
        jobs.job_started.connect(self._on_started)
        jobs.progress.connect(self._on_progress)
        jobs.finished.connect(self._on_finished)
        jobs.cancelled.connect(self._on_cancelled)
        jobs.failed.connect(self._on_failed)
        if jobs.staging is not None:  # the count follows the strip; "Done" once chosen
            jobs.staging.changed.connect(self._staging_changed)

    # ---- the document -------------------------------------------------------------------

    def document(self) -> Document | None:
        """The document Generate works on now."""
        return self._documents()

    def refresh_document(self) -> None:
        """Follow the provider's current document (call when the active document changes)."""
        doc = self._documents()
        if doc is not self._doc:
            if self._doc is not None:
                self._disconnect_document(self._doc)
            self._doc = doc
            staging = self.jobs.staging
            if staging is not None and staging.active and staging.doc is not doc:
                staging.discard()  # variants of a document that is no longer shown
            if doc is not None:
                doc.layers_changed.connect(self._schedule_mode)
                doc.pixels_changed.connect(self._schedule_mode)
                doc.active_layer_changed.connect(self._schedule_mode)
                doc.selection_changed.connect(self._schedule_mode)
                frame_of(doc).changed.connect(self._schedule_mode)
        session = self.sessions.activate(doc)
        if session is not self.session or not self._shown_once:
            self._bind_session(session)
            self._shown_once = True
            self._show_values()
        self._refresh_mode()

    def _disconnect_document(self, doc: Document) -> None:
        for signal in (
            doc.layers_changed,
            doc.pixels_changed,
            doc.active_layer_changed,
            doc.selection_changed,
            frame_of(doc).changed,
        ):
            with contextlib.suppress(RuntimeError, TypeError):
                signal.disconnect(self._schedule_mode)

    def _schedule_mode(self, *_args: object) -> None:
        self._mode_timer.start()

    def _refresh_mode(self) -> None:
        doc = self._doc
        self._detected = planned_workflow(doc) if doc is not None else None
        if self._message_workflow not in (None, self._detected):  # e.g. a mask was painted
            self._message_workflow = None
            self.show_message(None)
        self._show_mode()
        self._refresh_controls()

    def _override(self) -> Workflow | None:
        value = self.mode_combo.currentData()
        return Workflow(value) if value else None

    @property
    def detected_workflow(self) -> Workflow | None:
        return self._detected

    @property
    def workflow(self) -> Workflow | None:
        """The mode Generate will use: the override, else what the document suggests."""
        return self._override() or self._detected

    def _show_mode(self) -> None:
        override = self._override()
        if self._detected is None and override is None:
            self.mode_label.setText("Mode: no document")
            return
        if override is not None:
            self.mode_label.setText(f"Mode: <b>{override.value}</b> (chosen)")
        else:
            framed = self._doc is not None and frame_of(self._doc).rect is not None
            hint = (FRAME_HINTS if framed else MODE_HINTS)[self._detected]
            self.mode_label.setText(f"Mode: <b>{self._detected.value}</b> ({hint})")
        shown = override or self._detected
        self.strength_spin.setEnabled(shown is not Workflow.TXT2IMG)
        self.mask_blur_spin.setEnabled(shown is Workflow.INPAINT)

    def _refresh_controls(self) -> None:
        self.controls_list.clear()
        layers = active_control_layers(self._doc) if self._doc is not None else []
        for layer in layers:
            settings = layer.control
            model = settings.model_path.rsplit("/", 1)[-1] if settings.model_path else "no model!"
            text = (
                f"{layer.name}: {settings.control_type} · {model} · weight {settings.weight:.2f}"
                f" · steps {settings.start:.0%}–{settings.end:.0%}"
            )
            self.controls_list.addItem(text)
        if not layers:
            self.controls_list.addItem("None (add a pose, control or sketch-as-control layer)")
        self.controls_label.setText(f"Control layers ({len(layers)})")

    # ---- parameters ---------------------------------------------------------------------

    def add_model(
        self,
        path: str,
        name: str | None = None,
        model_hash: str | None = None,
        native_size: int = 512,
    ) -> None:
        """Offer a model in the fallback combobox (when no model picker is used)."""
        if self.model_combo is None:
            raise RuntimeError("the panel uses a model picker; add models to its library")
        data = {
            "path": path,
            "name": name or path.rsplit("/", 1)[-1],
            "hash": model_hash,
            "native": native_size,
        }
        self.model_combo.addItem(data["name"], data)
        self.model_combo.setCurrentIndex(self.model_combo.count() - 1)

    def params(self, resolve_seed: bool = False) -> GenerationParams:
        """The session's settings; with ``resolve_seed`` a random seed is drawn now."""
        return self.session.params(resolve_seed)

    def set_params(
        self, params: GenerationParams, keep_model: bool = False, keep_loras: bool = False
    ) -> None:
        """Set the session from a plain parameter value (scripts and tests)."""
        changes: dict[str, Any] = {
            "prompt": params.prompt,
            "negative_prompt": params.negative_prompt,
            "sampler": params.sampler,
            "steps": params.steps,
            "guidance": params.guidance,
            "strength": params.strength,
            "seed": min(params.seed, MAX_SEED),
            "batch_size": params.batch_size,
            "resolution": params.resolution,
            "padding": params.padding,
            "mask_blur": params.mask_blur,
            "workflow": params.workflow,
        }
        if not keep_loras:
            changes["loras"] = tuple((path, weight, True) for path, weight in params.loras)
        if not keep_model:
            current = self.session.values.model
            changes["model"] = (
                current
                if current.path == params.model_path
                else ModelChoice(
                    params.model_path,
                    params.model_name,
                    params.model_hash,
                    params.native_size,
                    params.vae_path,
                )
            )
        self.session.update(**changes)

    def apply_recipe(self, recipe: dict[str, Any]) -> None:
        """Load a result's recipe into the session (fixed seed, its mode as the override).

        Its LoRAs replace the list; one whose file moved is looked up by name in the library."""
        missing = self.session.apply_recipe(recipe)
        if self.lora_picker is not None:
            self.lora_picker.show_missing(missing)

    def use_seed(self, seed: int) -> None:
        self.session.use_seed(seed)

    def reuse_last_seed(self) -> None:
        self.session.reuse_last_seed()

    @property
    def recent_prompts(self) -> list[PromptPair]:
        """The session's prompt history, newest first."""
        return self.session.recent_prompts

    def state(self) -> dict[str, Any]:
        """The current document's ``generation_state`` with the session's state in it (what a
        project file saves; the session keeps it up to date in the document itself)."""
        doc = self._documents()
        base = dict(doc.generation_state) if doc is not None else {}
        base[STATE_KEY] = self.sessions.for_document(doc).to_state()
        return base

    # ---- generate / cancel --------------------------------------------------------------

    def generate(self) -> int | None:
        """Queue a job from the current document; returns its id, or None with a message."""
        doc = self._documents()
        if doc is not self._doc:
            self.refresh_document()
        if doc is None:
            self.show_message("Open or create a picture first.")
            return None
        try:
            job_id = self.session.generate()
        except RequestBuildError as error:
            self.show_message(str(error))
            self._message_workflow = self._detected  # goes when the picture's mode changes
            return None
        self.show_message(None)
        return job_id

    def cancel(self) -> None:
        self.jobs.cancel_current()

    def show_message(self, text: str | None) -> None:
        self.message_label.setVisible(bool(text))
        self.message_label.setText(text or "")
        if text:
            self.status_message.emit(text)

    # ---- recent prompts ------------------------------------------------------------------

    def _fill_history_menu(self) -> None:
        self.history_menu.clear()
        if not self.recent_prompts:
            self.history_menu.addAction("No prompts yet").setEnabled(False)
        for prompt, negative in self.recent_prompts:
            label = " ".join(prompt.split())  # one line, however the prompt was typed
            label = label if len(label) <= 60 else label[:59] + "…"
            action = self.history_menu.addAction(label.replace("&", "&&"))
            if negative:
                action.setToolTip(f"{prompt}\nNegative: {negative}")
            action.triggered.connect(
                lambda _=False, p=prompt, n=negative: self.use_recent_prompt(p, n)
            )

    def use_recent_prompt(self, prompt: str, negative: str) -> None:
        """Put a remembered prompt pair back into the prompt fields."""
        self.session.use_recent_prompt(prompt, negative)

    # ---- job events ---------------------------------------------------------------------

    def _refresh_queue(self) -> None:
        self.queue_list.clear()
        for job in self.jobs.jobs:
            item = QListWidgetItem(self.queue_list)
            row = QWidget(self.queue_list)
            line = QHBoxLayout(row)
            line.setContentsMargins(4, 0, 4, 0)
            state = {
                JobState.RUNNING: "Running",
                JobState.CANCELLING: "Cancelling",
                JobState.QUEUED: "Queued",
            }.get(job.state, "")
            text = f"{state}: {job.label}"
            label = QLabel(row)
            label.setToolTip(f"{text}\n{job.plan.request.prompt}")
            label.setMinimumWidth(40)
            label.setText(
                label.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, QUEUE_TEXT_PX)
            )
            button = QToolButton(row)
            button.setText("✕")
            button.setToolTip("Cancel this job")
            button.setObjectName(f"cancelJob{job.id}")
            button.setEnabled(job.state is not JobState.CANCELLING)
            button.clicked.connect(lambda _=False, job_id=job.id: self.jobs.cancel(job_id))
            line.addWidget(label, 1)
            line.addWidget(button)
            item.setSizeHint(row.sizeHint())
            item.setData(Qt.ItemDataRole.UserRole, job.id)
            self.queue_list.setItemWidget(item, row)
        busy = self.jobs.running is not None
        self.cancel_button.setEnabled(busy)
        self.cancel_shortcut.setEnabled(busy)
        if not self.jobs.busy:
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)

    def _on_started(self, _job_id: int) -> None:
        self.progress_bar.setRange(0, 0)  # busy until the first step (model loading)
        self._set_progress_text("Loading model…")

    def _on_progress(self, _job_id: int, step: int, total: int, elapsed: float, eta: float) -> None:
        if step <= 0:
            return
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(step)
        text = f"Step {step}/{total}"
        request = getattr(getattr(self.jobs.running, "plan", None), "request", None)
        if request is not None and total != request.steps:  # strength scales the steps
            text += f" ({request.steps} × strength {request.strength:.2f})"
        text += f" · {elapsed:.1f} s"
        if step < total:
            text += f" · about {eta:.0f} s left" if eta >= 1 else " · almost done"
        self._set_progress_text(text)

    def _on_finished(self, _job_id: int, layers: object) -> None:
        self._set_progress_text(self._done_text())

    def _done_text(self) -> str:
        """What is true once a job ended: every variant waiting in the strip counts, not just
        the last batch's."""
        staging = self.jobs.staging
        waiting = len(staging) if staging is not None else 0
        if waiting > 1:
            return f"Done: {waiting} variants to choose from"
        if waiting == 1:
            return "Done: 1 variant to choose from"
        return "Done"

    def _staging_changed(self) -> None:
        if self.jobs.running is None:  # mid-job the progress text stays
            self._set_progress_text(self._done_text())

    def _on_cancelled(self, _job_id: int) -> None:
        self._set_progress_text("Cancelled")

    def _on_failed(self, _job_id: int, message: str) -> None:
        self._set_progress_text("Failed")
        self.show_message(message)

    def _set_progress_text(self, text: str) -> None:
        self.progress_label.setText(text)
        self.progress_label.setToolTip(text)  # a narrow dock cuts the line; the tip has it all
        self.status_message.emit(text)


def _picker_library(model_picker: QWidget | None) -> ModelLibrary | None:
    """The model library behind a ``ModelPicker`` (it keeps it as ``_scanner``)."""
    for name in ("scanner", "_scanner"):
        scanner = getattr(model_picker, name, None)
        if isinstance(scanner, ModelLibrary):
            return scanner
    return None


def _fit_lines(edit: QPlainTextEdit, lines: int) -> None:
    """A text box exactly ``lines`` lines tall (it scrolls beyond)."""
    margins = edit.contentsMargins()
    document_margin = edit.document().documentMargin()
    height = edit.fontMetrics().lineSpacing() * lines + 2 * document_margin
    edit.setFixedHeight(round(height + margins.top() + margins.bottom() + 2 * edit.frameWidth()))


def _spin(low: int, high: int, value: int, parent: QWidget) -> QSpinBox:
    spin = QSpinBox(parent)
    spin.setRange(low, high)
    spin.setValue(value)
    return spin


def _dspin(low: float, high: float, value: float, step: float, parent: QWidget) -> QDoubleSpinBox:
    spin = QDoubleSpinBox(parent)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setDecimals(2)
    spin.setValue(value)
    return spin


def _select_data(combo: QComboBox, data: object) -> None:
    data = getattr(data, "value", data)
    for row in range(combo.count()):
        if combo.itemData(row) == data:
            combo.setCurrentIndex(row)
            return
