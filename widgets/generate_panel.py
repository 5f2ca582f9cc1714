"""The generate panel: prompt, model and sampling settings, Generate / Cancel, progress, queue.

It holds no document state: the mode it shows is recomputed from the current document (through
the document-provider callable) whenever that document changes, and Generate hands a snapshot
request to the :class:`~app.jobs.JobController`. Nothing here waits on the engine.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import asdict, replace
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
from app.jobs import JobController, JobState
from app.request_builder import (
    GenerationParams,
    RequestBuildError,
    ResolutionPolicy,
    Workflow,
    active_control_layers,
    detect_workflow,
    params_from_recipe,
    recipe_loras,
)
from app.settings import Settings, SettingsError, SettingsStore
from inference.api import Sampler
from widgets.lora_picker import LoraPicker
from widgets.model_picker import LibraryScanner

log = logging.getLogger(__name__)

CLASSIC_LABEL = "Built-in classic (no model)"
CLASSIC_IGNORES_LORAS = "The built-in classic engine ignores LoRAs: choose a model to use them."
MAX_SEED = 2**31 - 1  # QSpinBox holds a signed 32-bit int
MAX_RECENT_PROMPTS = 20  # kept per panel and in the user's settings
DEFAULT_SETTINGS = ("default_sampler", "default_steps", "default_guidance")
QUEUE_TEXT_PX = 230
STATE_KEY = "panel"  # inside Document.generation_state
MODE_HINTS = {
    Workflow.INPAINT: "the inpaint mask has pixels",
    Workflow.SKETCH: "the active layer is a sketch",
    Workflow.IMG2IMG_SELECTION: "an area is selected",
    Workflow.IMG2IMG: "the whole picture",
    Workflow.TXT2IMG: "the canvas is empty",
}

DocumentProvider = Callable[[], Document | None]
PromptPair = tuple[str, str]  # (prompt, negative prompt)


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
        scanner: LibraryScanner | None = None,
    ) -> None:
        """``store``: the user's settings; when given, the panel starts from its default sampler,
        steps and guidance, follows changes to them, and keeps its recent prompts there so they
        survive restarts. Without it the recent prompts live only in the documents.

        ``scanner``: the model library whose LoRAs the LoRA list offers; by default the model
        picker's own. Without a library there is no LoRA list and requests carry no LoRAs."""
        super().__init__(parent)
        self.setObjectName("generatePanel")
        self._documents = documents
        self.jobs = jobs
        self._doc: Document | None = None
        self.recent_prompts: list[PromptPair] = []  # newest first
        self._detected: Workflow | None = None
        self._build(model_picker, scanner or _picker_scanner(model_picker))
        self._store = store
        if store is not None:
            self._apply_settings(store.settings, frozenset(DEFAULT_SETTINGS) | {"recent_prompts"})
            unsubscribe = store.subscribe(self._apply_settings)
            # the store outlives the panel: stop hearing it when the widget goes
            self.destroyed.connect(lambda *_: unsubscribe())
        self._mode_timer = QTimer(self, singleShot=True, interval=120)
        self._mode_timer.timeout.connect(self._refresh_mode)
        self._connect_jobs()
        self.refresh_document()

    # ---- construction -------------------------------------------------------------------

    def _build(self, model_picker: QWidget | None, scanner: LibraryScanner | None) -> None:
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
        self.prompt_edit.setMaximumHeight(90)
        self.negative_edit = QPlainTextEdit(self)
        self.negative_edit.setPlaceholderText("Negative prompt: what to avoid")
        self.negative_edit.setMaximumHeight(60)
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
        self.progress_label = QLabel("Ready", self)
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
        layout.addLayout(mode_row)
        layout.addLayout(prompt_row)
        layout.addWidget(self.prompt_edit)
        layout.addWidget(self.negative_edit)
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
        outer.addWidget(scroll, 1)
        outer.addLayout(buttons)
        outer.addWidget(self.progress_bar)
        outer.addWidget(self.progress_label)
        outer.addWidget(self.message_label)

        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.reuse_seed_button.clicked.connect(self.reuse_last_seed)
        self.random_seed_check.toggled.connect(lambda on: self.seed_spin.setEnabled(not on))
        self.seed_spin.setEnabled(False)
        self.mode_combo.currentIndexChanged.connect(lambda _i: self._show_mode())
        for sequence in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = QShortcut(QKeySequence(sequence), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(self.generate)
        self.cancel_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self.cancel_shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        self.cancel_shortcut.activated.connect(self.cancel)
        self.cancel_shortcut.setEnabled(False)  # Esc stays with the canvas unless a job runs
        checkpoint_changed = getattr(self.model_picker, "checkpoint_changed", None)
        if checkpoint_changed is not None:
            checkpoint_changed.connect(lambda _entry: self._follow_checkpoint())
        if self.model_combo is not None:
            self.model_combo.currentIndexChanged.connect(lambda _i: self._follow_checkpoint())
        self._follow_checkpoint()

    def _follow_checkpoint(self) -> None:
        """Offer the LoRAs of the chosen checkpoint's base; say when the classic engine will
        ignore them."""
        if self.lora_picker is None:
            return
        entry = self.model_picker.checkpoint() if self.model_picker is not None else None
        self.lora_picker.set_base(getattr(entry, "base", None))
        classic = self._model_choice()["path"] is None
        self.lora_picker.set_ignored_reason(CLASSIC_IGNORES_LORAS if classic else None)

    def _connect_jobs(self) -> None:
        jobs = self.jobs
        jobs.queue_changed.connect(self._refresh_queue)
        jobs.job_started.connect(self._on_started)
        jobs.progress.connect(self._on_progress)
        jobs.finished.connect(self._on_finished)
        jobs.cancelled.connect(self._on_cancelled)
        jobs.failed.connect(self._on_failed)

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
                self.restore_state(doc.generation_state.get(STATE_KEY))
        self._refresh_mode()

    def _disconnect_document(self, doc: Document) -> None:
        for signal in (
            doc.layers_changed,
            doc.pixels_changed,
            doc.active_layer_changed,
            doc.selection_changed,
        ):
            with contextlib.suppress(RuntimeError, TypeError):
                signal.disconnect(self._schedule_mode)

    def _schedule_mode(self, *_args: object) -> None:
        self._mode_timer.start()

    def _refresh_mode(self) -> None:
        doc = self._doc
        self._detected = detect_workflow(doc) if doc is not None else None
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
            hint = MODE_HINTS[self._detected]
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

    def _model_choice(self) -> dict[str, Any]:
        if self.model_picker is not None:
            entry = self.model_picker.checkpoint()
            if entry is None:
                return {
                    "path": None,
                    "name": "Built-in classic",
                    "hash": None,
                    "native": 512,
                    "vae": None,
                }
            return {
                "path": entry.path,
                "name": entry.display_name or entry.path.rsplit("/", 1)[-1],
                "hash": entry.hash,
                "native": entry.base.native_size,
                "vae": self.model_picker.vae_path(),
            }
        data = self.model_combo.currentData() if self.model_combo is not None else None
        if not data:
            return {
                "path": None,
                "name": "Built-in classic",
                "hash": None,
                "native": 512,
                "vae": None,
            }
        return {**data, "vae": None}

    def params(self, resolve_seed: bool = False) -> GenerationParams:
        """The panel's settings; with ``resolve_seed`` a random seed is drawn now."""
        model = self._model_choice()
        seed = self.seed_spin.value()
        if resolve_seed and self.random_seed_check.isChecked():
            seed = random.randint(0, MAX_SEED)
        return GenerationParams(
            prompt=self.prompt_edit.toPlainText(),
            negative_prompt=self.negative_edit.toPlainText(),
            model_path=model["path"],
            model_name=model["name"],
            model_hash=model["hash"],
            vae_path=model.get("vae"),
            native_size=int(model["native"]),
            sampler=Sampler(self.sampler_combo.currentData()),
            steps=self.steps_spin.value(),
            guidance=self.guidance_spin.value(),
            strength=self.strength_spin.value(),
            seed=seed,
            batch_size=self.batch_spin.value(),
            resolution=ResolutionPolicy(self.resolution_combo.currentData()),
            padding=self.padding_spin.value(),
            mask_blur=self.mask_blur_spin.value(),
            workflow=self._override(),
            loras=self._loras(model["path"]),
        )

    def _loras(self, model_path: str | None) -> tuple[tuple[str, float], ...]:
        if self.lora_picker is None or model_path is None:
            return ()  # the classic engine has no LoRAs
        return self.lora_picker.loras()

    def set_params(
        self, params: GenerationParams, keep_model: bool = False, keep_loras: bool = False
    ) -> None:
        self.prompt_edit.setPlainText(params.prompt)
        self.negative_edit.setPlainText(params.negative_prompt)
        _select_data(self.sampler_combo, params.sampler)
        self.steps_spin.setValue(params.steps)
        self.guidance_spin.setValue(params.guidance)
        self.strength_spin.setValue(params.strength)
        self.seed_spin.setValue(min(params.seed, MAX_SEED))
        self.batch_spin.setValue(params.batch_size)
        _select_data(self.resolution_combo, params.resolution)
        self.padding_spin.setValue(params.padding)
        self.mask_blur_spin.setValue(params.mask_blur)
        _select_data(self.mode_combo, params.workflow)
        if not keep_model:
            self._select_model(params.model_path)
        if not keep_loras and self.lora_picker is not None:
            self.lora_picker.set_loras(params.loras)

    def _select_model(self, path: str | None) -> None:
        if self.model_picker is not None:
            self.model_picker.set_checkpoint_path(path)
            return
        assert self.model_combo is not None
        for row in range(self.model_combo.count()):
            data = self.model_combo.itemData(row)
            if (data["path"] if data else None) == path:
                self.model_combo.setCurrentIndex(row)
                return

    def apply_recipe(self, recipe: dict[str, Any]) -> None:
        """Load a result's recipe into the panel (fixed seed, its mode as the override).

        Its LoRAs replace the list; one whose file moved is looked up by name in the library."""
        params = params_from_recipe(recipe, self.params())
        if self.lora_picker is not None:
            loras, missing = self.lora_picker.resolve(recipe.get("loras"))
            params = replace(params, loras=tuple(loras))
        self.set_params(params)
        if self.lora_picker is not None:
            self.lora_picker.show_missing(missing)
        self.random_seed_check.setChecked(False)

    def use_seed(self, seed: int) -> None:
        self.random_seed_check.setChecked(False)
        self.seed_spin.setValue(min(int(seed), MAX_SEED))

    def reuse_last_seed(self) -> None:
        if self.jobs.last_seed is not None:
            self.use_seed(self.jobs.last_seed)

    def state(self) -> dict[str, Any]:
        """The current document's ``generation_state`` with this panel's settings in it (what a
        project file saves; ``refresh_document`` restores it when the document comes back)."""
        doc = self._documents()
        base = dict(doc.generation_state) if doc is not None else {}
        base[STATE_KEY] = self.save_state()
        return base

    def save_state(self) -> dict[str, Any]:
        params = self.params()
        state = {k: (v.value if hasattr(v, "value") else v) for k, v in asdict(params).items()}
        state["random_seed"] = self.random_seed_check.isChecked()
        state["loras"] = [list(pair) for pair in params.loras]
        if self.lora_picker is not None:
            state["lora_rows"] = self.lora_picker.rows_state()  # disabled rows too
        state["recent_prompts"] = [list(pair) for pair in self.recent_prompts]
        return state

    def restore_state(self, state: dict[str, Any] | None) -> None:
        if not state:
            return
        try:
            base = self.params()
            params = replace(
                params_from_recipe(state, base),
                batch_size=int(state.get("batch_size", base.batch_size)),
                resolution=ResolutionPolicy(state.get("resolution", base.resolution.value)),
                workflow=Workflow(state["workflow"]) if state.get("workflow") else None,
            )
        except (ValueError, TypeError, KeyError) as error:
            log.warning("ignoring a saved generate-panel state: %s", error)
            return
        self.set_params(params, keep_model=True, keep_loras=True)
        self._restore_loras(state)
        self.random_seed_check.setChecked(bool(state.get("random_seed", True)))
        self._merge_recent(state.get("recent_prompts"))

    def _restore_loras(self, state: dict[str, Any]) -> None:
        """The LoRA rows of a saved state (a state saved before LoRAs keeps the current list)."""
        if self.lora_picker is None:
            return
        rows = state.get("lora_rows")
        if isinstance(rows, list):
            self.lora_picker.set_loras(r for r in rows if isinstance(r, list | tuple))
        elif "loras" in state:
            self.lora_picker.set_loras(recipe_loras(state["loras"]))

    # ---- generate / cancel --------------------------------------------------------------

    def generate(self) -> int | None:
        """Queue a job from the current document; returns its id, or None with a message."""
        doc = self._documents()
        if doc is not self._doc:
            self.refresh_document()
        if doc is None:
            self.show_message("Open or create a picture first.")
            return None
        params = self.params(resolve_seed=True)
        try:
            job_id = self.jobs.generate(doc, params)
        except RequestBuildError as error:
            self.show_message(str(error))
            return None
        self.seed_spin.setValue(params.seed)
        self.show_message(None)
        self._remember_prompt(params.prompt, params.negative_prompt)
        doc.generation_state[STATE_KEY] = self.save_state()
        self._save_recent()
        return job_id

    def cancel(self) -> None:
        self.jobs.cancel_current()

    def show_message(self, text: str | None) -> None:
        self.message_label.setVisible(bool(text))
        self.message_label.setText(text or "")
        if text:
            self.status_message.emit(text)

    # ---- recent prompts and settings ---------------------------------------------------

    def _remember_prompt(self, prompt: str, negative: str = "") -> None:
        pair = (prompt.strip(), negative.strip())
        if not pair[0]:
            return
        if pair in self.recent_prompts:
            self.recent_prompts.remove(pair)
        self.recent_prompts.insert(0, pair)
        del self.recent_prompts[MAX_RECENT_PROMPTS:]

    def _merge_recent(self, saved: object) -> None:
        """Add a document's saved history after ours (older entries: plain prompt strings)."""
        if not isinstance(saved, list):
            return
        for item in saved:
            if isinstance(item, str):
                pair = (item.strip(), "")
            elif isinstance(item, list | tuple) and len(item) == 2:
                pair = (str(item[0]).strip(), str(item[1]).strip())
            else:
                continue
            if pair[0] and pair not in self.recent_prompts:
                self.recent_prompts.append(pair)
        del self.recent_prompts[MAX_RECENT_PROMPTS:]

    def _save_recent(self) -> None:
        """Keep the history in the user's settings (a failed write costs only the history)."""
        if self._store is None:
            return
        try:
            self._store.update(recent_prompts=tuple(self.recent_prompts))
        except (OSError, SettingsError) as error:
            log.warning("could not save the recent prompts: %s", error)

    def _apply_settings(self, settings: Settings, changed: frozenset[str]) -> None:
        """Take new defaults (sampler, steps, guidance) and another panel's history."""
        if "default_sampler" in changed:
            _select_data(self.sampler_combo, settings.default_sampler)
        if "default_steps" in changed:
            self.steps_spin.setValue(settings.default_steps)
        if "default_guidance" in changed:
            self.guidance_spin.setValue(settings.default_guidance)
        if "recent_prompts" in changed:
            ours = self.recent_prompts
            self.recent_prompts = [tuple(pair) for pair in settings.recent_prompts]
            self._merge_recent([list(pair) for pair in ours])

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
        self.prompt_edit.setPlainText(prompt)
        self.negative_edit.setPlainText(negative)

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
        text = f"Step {step}/{total} · {elapsed:.1f} s"
        if step < total:
            text += f" · about {eta:.0f} s left" if eta >= 1 else " · almost done"
        self._set_progress_text(text)

    def _on_finished(self, _job_id: int, layers: object) -> None:
        count = len(layers) if isinstance(layers, list) else 0
        staged = self.jobs.staging is not None and count > 1
        done = f"Done: {count} variants to choose from" if staged else "Done"
        self._set_progress_text(done)

    def _on_cancelled(self, _job_id: int) -> None:
        self._set_progress_text("Cancelled")

    def _on_failed(self, _job_id: int, message: str) -> None:
        self._set_progress_text("Failed")
        self.show_message(message)

    def _set_progress_text(self, text: str) -> None:
        self.progress_label.setText(text)
        self.status_message.emit(text)


def _picker_scanner(model_picker: QWidget | None) -> LibraryScanner | None:
    """The model library behind a ``ModelPicker`` (it keeps it as ``_scanner``)."""
    for name in ("scanner", "_scanner"):
        scanner = getattr(model_picker, name, None)
        if isinstance(scanner, LibraryScanner):
            return scanner
    return None


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
