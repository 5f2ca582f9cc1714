"""The full workspace around the main window: settings, model library, generation, variants,
control layers, project files (Save, Recent, exports), autosave and crash recovery.

``MainWindow`` is the editor on its own (canvas, layers, tools); :class:`Workspace` adds the parts
that need settings and background services, so tests can build either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import shiboken6
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFrame,
    QMenu,
    QMessageBox,
    QScrollArea,
    QWidget,
)

from app import files
from app.engine_choice import engine_key, is_remote, remote_engine_factory
from app.frame import describe_frame
from app.generation.jobs import JobController, default_engine_factory
from app.generation.request import RequestBuildError, ResolutionPolicy
from app.generation.session import GenerationSessions
from app.generation.upscale import (
    UpscaleOptions,
    build_upscale_job,
    option_problem,
    upscaler_files,
)
from app.geometry import Rect
from app.io.autosave import AutosaveManager
from app.layers import LayerKind
from app.library import ModelLibrary
from app.model_choice import first_pick
from app.pose_import import import_pose, read_pose_file
from app.recent import RecentFiles
from app.settings import Settings, SettingsStore
from app.staging import Staging
from widgets.control_panel import ControlPanel
from widgets.generate_panel import GeneratePanel
from widgets.hub_dialog import HubDialog
from widgets.layers_panel import ID_ROLE
from widgets.main_window import MainWindow, ToolId
from widgets.model_picker import ModelPicker
from widgets.pose_import_dialog import PoseImportDialog
from widgets.pose_overlay import PoseOverlayPainter
from widgets.result_actions import result_actions
from widgets.settings_dialog import SettingsDialog
from widgets.staging_strip import StagingStrip
from widgets.upscale_dialog import UpscaleDialog

log = logging.getLogger(__name__)

PROJECT_FILTER = "Impasto project (*.ora)"
# after a model is picked: let the window settle first (the import no longer stalls the UI
# thread, see inference.device.preload_torch_library, so this can be short)
WARM_UP_DELAY_MS = 500
MODEL_SUFFIXES = {".safetensors", ".ckpt", ".pt", ".bin"}
EXPORTS: dict[str, tuple[str, Callable]] = {
    "psd": ("Layered Photoshop file (*.psd)", files.export_psd),
    "flat": (
        "PNG with parameters (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp)",
        files.export_flat_with_recipe,
    ),
    "mask": ("Mask PNG (*.png)", files.export_mask_png),
    "pose_json": ("OpenPose JSON (*.json)", files.export_pose_json),
    "pose_png": ("Pose control image (*.png)", files.export_pose_png),
}


EXPORT_SUFFIXES = {
    "psd": ".psd",
    "flat": ".png",
    "mask": "_mask.png",
    "pose_json": "_pose.json",
    "pose_png": "_pose.png",
}


def _scrollable(panel: QWidget) -> QScrollArea:
    """Tall panels scroll instead of squeezing the layers panel or outgrowing the screen."""
    area = QScrollArea()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scrollbar = area.verticalScrollBar().sizeHint().width()
    area.setMinimumWidth(max(panel.minimumSizeHint().width(), 340) + scrollbar)
    return area


def _engine_factory(settings: Settings):
    """This machine's engine, or the server's (Settings › Engine)."""
    if is_remote(settings):
        return remote_engine_factory(settings)
    return default_engine_factory(settings.engine_settings())


class Workspace(QObject):
    def __init__(
        self,
        window: MainWindow,
        store: SettingsStore | None = None,
        *,
        engine_factory=None,
        autosave_folder: Path | None = None,
        library_cache: Path | None = None,
        scan_models: bool = True,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.store = store or SettingsStore()
        settings = self.store.settings
        self.recent = RecentFiles(self.store.path.with_name("recent.json"))

        self.scanner = ModelLibrary(self.store, cache_path=library_cache, parent=window)
        self.picker = ModelPicker(self.scanner, self.store, show_controlnet=False)
        self.staging = Staging(window)
        self.jobs = JobController(
            engine_factory or _engine_factory(settings),
            staging=self.staging,
            parent=window,
        )
        self._custom_engine = engine_factory is not None
        # once a diffusers model is chosen, import torch/diffusers while the user is idle, so
        # the first Ctrl+Enter does not wait seconds for them (and stall the window meanwhile)
        self._warm_up_timer = QTimer(window, singleShot=True, interval=WARM_UP_DELAY_MS)
        self._warm_up_timer.timeout.connect(self.jobs.warm_up)
        self.picker.checkpoint_changed.connect(self._warm_up_soon)
        # one generation session per document, shared by the panel and anything else that
        # generates (live painting, scripts)
        self.sessions = GenerationSessions(
            self.jobs, library=self.scanner, store=self.store, parent=window
        )
        self.generate_panel = GeneratePanel(
            lambda: window.doc,
            self.jobs,
            self.picker,
            store=self.store,
            scanner=self.scanner,
            sessions=self.sessions,
        )
        self.generate_panel.status_message.connect(
            lambda text: window.statusBar().showMessage(text, 5000)
        )
        self.generate_dock = window.add_dock(self.generate_panel, "Generate")  # scrolls inside
        self.control_panel = ControlPanel(lambda: window.doc, scanner=self.scanner)
        self.control_dock = window.add_dock(_scrollable(self.control_panel), "Control")
        # Layers, Generate and Control stacked, each seen at once (no tabs); the prompt and
        # Generate button stay visible inside the Generate panel, its settings scroll
        window.splitDockWidget(self.generate_dock, self.control_dock, Qt.Orientation.Vertical)
        window.resizeDocks(
            [window.layers_dock, self.generate_dock, self.control_dock],
            [345, 480, 110],
            Qt.Orientation.Vertical,
        )
        # the right column keeps its full height; the Variants strip opens under the canvas only
        window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        window.resizeDocks([self.generate_dock], [400], Qt.Orientation.Horizontal)
        self.control_panel.tool_requested.connect(window.select_tool)
        self.strip = StagingStrip(self.staging)
        self.variants_dock = window.add_dock(
            self.strip, "Variants", Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.variants_dock.setVisible(False)
        self.staging.changed.connect(lambda: self.variants_dock.setVisible(self.staging.active))
        self.jobs.finished.connect(self._result_arrived)
        window.canvas.overlay_painters.append(
            PoseOverlayPainter(lambda: window.tools.get(ToolId.POSE))
        )
        window.frame_overlay.describe = self._describe_frame  # with the model's scale

        self.autosave = AutosaveManager(
            autosave_folder, interval_minutes=max(settings.autosave_minutes, 1), parent=self
        )
        self.autosave.autosave_failed.connect(
            lambda message: window.statusBar().showMessage(f"Autosave failed: {message}", 8000)
        )
        self._tint_hidden_for: tuple[set[int], bool] = (set(), False)  # result ids, landed yet
        self._layers_doc = None
        window.document_changed.connect(self._document_changed)
        self._watch(window.doc)
        window.save_handler = self.save
        window.drop_handlers.append(self.add_dropped_model)
        window.closed.connect(self.shutdown)

        self._build_file_actions()
        self._build_layer_actions()
        self._build_settings_action()
        self._build_upscale_action()
        self.apply_settings(settings, initial=True)
        self._pick_after_scan = False  # model folders were added: choose a model once listed
        self._unsubscribe = self.store.subscribe(self._settings_changed)
        self._warm_up_soon(self.picker.checkpoint())  # a model restored from last session
        self.scanner.scan_finished.connect(self._pick_first_model)
        if scan_models:
            self.scanner.rescan()

    def _describe_frame(self, rect: Rect) -> str:
        values = self.sessions.current.values
        native = values.model.native_size if values.model.path is not None else None
        return describe_frame(rect, native, values.resolution is ResolutionPolicy.EXACT)

    def _result_arrived(self, _job_id: int, layers: object) -> None:
        """Show the result, not the mask tint over it; the tint returns with the mask tools,
        a mask edit, Alt+M, or when the result is undone (the mask will be used again)."""
        if layers:
            self.window.canvas.set_mask_shown(False)
            ids = {layer.id for layer in layers}
            landed = any(layer.id in ids for layer in self.window.doc.layers)
            self._tint_hidden_for = (ids, landed)  # variants land later, on Accept
            self.window.statusBar().showMessage(
                "Mask overlay hidden to show the result (Alt+M shows it)", 6000
            )

    # ---- menus -----------------------------------------------------------------------------

    def _action(self, text: str, slot: Callable, shortcut=None) -> QAction:
        action = QAction(text, self.window)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _build_file_actions(self) -> None:
        menu: QMenu = self.window.menus["file"]
        anchor = self.window.file_save_anchor
        self.save_action = self._action("&Save", self.save, QKeySequence.StandardKey.Save)
        self.save_as_action = self._action("Save &As…", self.save_as, "Ctrl+Shift+S")
        self.recent_menu = QMenu("Open &Recent", self.window)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        export_menu = QMenu("Export &More", self.window)
        for key, label in (
            ("flat", "Flattened image with parameters…"),
            ("psd", "Layered PSD…"),
            ("mask", "Mask as PNG…"),
            ("pose_json", "Pose as OpenPose JSON…"),
            ("pose_png", "Pose as control image…"),
        ):
            export_menu.addAction(self._action(label, lambda k=key: self.export(k)))
        import_mask = self._action("Import Mask from PNG…", self.import_mask)
        self.import_pose_action = self._action("Import &Pose…", self.import_pose)
        for item in (self.save_action, self.save_as_action):
            menu.insertAction(anchor, item)
        menu.insertMenu(anchor, self.recent_menu)
        menu.insertSeparator(anchor)
        menu.insertMenu(anchor, export_menu)
        menu.insertAction(anchor, import_mask)
        menu.insertAction(anchor, self.import_pose_action)
        self.window.addActions([self.save_action, self.save_as_action])

    def _build_layer_actions(self) -> None:
        layer_menu: QMenu = self.window.menus["layer"]
        control_menu = layer_menu.addMenu("Control")
        for action in self.control_panel.control_actions.values():
            control_menu.addAction(action)
        pose_menu = layer_menu.addMenu("Pose figure")
        pose_menu.addAction(self._action("Add person", lambda: self._pose_tool("add_person")))
        pose_menu.addAction(
            self._action("Mirror selected person", lambda: self._pose_tool("mirror_selected"))
        )
        pose_menu.addAction(
            self._action("Delete selected person", lambda: self._pose_tool("delete_selected"))
        )
        self.result_menu = layer_menu.addMenu("Result")
        self.result_menu.aboutToShow.connect(self._fill_result_menu)
        layer_list = self.window.layers_panel.list
        layer_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        layer_list.customContextMenuRequested.connect(self._layer_context_menu)

    def _build_settings_action(self) -> None:
        edit: QMenu = self.window.menus["edit"]
        edit.addSeparator()
        edit.addAction(self._action("Settings…", self.open_settings, "Ctrl+,"))
        edit.addAction(self._action("Download Model from Hugging Face…", self.open_hub_dialog))

    def _build_upscale_action(self) -> None:
        """Image › Upscale… (the Image menu is made here when the window has none yet)."""
        menu = self.window.menus.get("image")
        if menu is None:
            menu = QMenu("&Image", self.window)
            self.window.menuBar().insertMenu(self.window.menus["layer"].menuAction(), menu)
            self.window.menus["image"] = menu
        self.upscale_action = self._action("&Upscale…", self.open_upscale_dialog)
        menu.addAction(self.upscale_action)

    def open_upscale_dialog(self) -> UpscaleDialog:
        doc = self.window.doc
        params = self.sessions.for_document(doc).params()
        limit = self.window.pixel_limit
        dialog = UpscaleDialog(
            (doc.width, doc.height),
            upscaler_files(self.scanner.entries()),
            lambda options: option_problem(doc, params, options, limit),
            tile=params.native_size if params.model_path else 512,
            can_refine=params.model_path is not None,
            parent=self.window,
        )
        dialog.accepted.connect(lambda: self.upscale(dialog.options()))
        dialog.finished.connect(dialog.deleteLater)
        self.upscale_dialog = dialog
        dialog.open()
        return dialog

    def upscale(self, options: UpscaleOptions) -> int | None:
        """Queue an upscale of the current picture; the canvas grows when it lands."""
        doc = self.window.doc
        params = self.sessions.for_document(doc).params(resolve_seed=True)
        try:
            plan = build_upscale_job(doc, params, options, self.window.pixel_limit)
        except RequestBuildError as error:
            self.window.statusBar().showMessage(str(error), 8000)
            return None
        return self.jobs.submit(doc, plan)

    def _pose_tool(self, method: str) -> None:
        self.window.select_tool(ToolId.POSE)
        tool = self.window.tools.get(ToolId.POSE)
        try:
            getattr(tool, method)()
        except Exception as err:  # no pose layer, locked layer: say so, never a traceback
            self.window.statusBar().showMessage(str(err), 6000)
        self.window.canvas.update()

    def _fill_result_menu(self) -> None:
        self.result_menu.clear()
        layer = self.window.doc.active_layer
        actions = result_actions(layer, self.generate_panel, self.result_menu) if layer else []
        if not actions:
            placeholder = self.result_menu.addAction("Select a result layer")
            placeholder.setEnabled(False)
        for action in actions:
            self.result_menu.addAction(action)

    def _layer_context_menu(self, position) -> None:
        layer_list = self.window.layers_panel.list
        item = layer_list.itemAt(position)
        if item is None or item.data(ID_ROLE) is None:
            return
        try:
            layer = self.window.doc.layer(int(item.data(ID_ROLE)))
        except (KeyError, TypeError, ValueError):
            return
        menu = QMenu(layer_list)
        for action in result_actions(layer, self.generate_panel, menu):
            menu.addAction(action)
        if layer.kind in (LayerKind.SKETCH, LayerKind.IMAGE):
            menu.addAction(self.control_panel.control_actions["sketch_as_scribble"])
        if menu.actions():
            menu.exec(layer_list.viewport().mapToGlobal(position))

    # ---- files -----------------------------------------------------------------------------

    def save(self) -> bool:
        doc = self.window.doc
        if doc.path is None or Path(doc.path).suffix.lower() != files.PROJECT_SUFFIX:
            return self.save_as()
        return self._save_to(doc.path)

    def save_as(self) -> bool:
        start = str(self.window.suggested_path(files.PROJECT_SUFFIX))
        path, _ = QFileDialog.getSaveFileName(self.window, "Save project", start, PROJECT_FILTER)
        return bool(path) and self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        doc = self.window.doc  # its session keeps doc.generation_state up to date
        try:
            written = files.save_project(doc, path)
        except files.FileError as err:
            self.window.show_error("Could not save", str(err))
            return False
        self.recent.add(written)
        self.window.update_title()
        self.window.statusBar().showMessage(f"Saved {written.name}", 4000)
        return True

    def open_recent(self, path: str) -> None:
        if not Path(path).exists():
            self.recent.remove(path)
            self.window.show_error("Could not open", f"{Path(path).name} no longer exists.")
            return
        if self.window.open_path(path):
            self.recent.add(path)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.recent.paths:
            self.recent_menu.addAction(
                self._action(Path(path).name, lambda p=path: self.open_recent(p))
            ).setToolTip(path)
        if not self.recent.paths:
            self.recent_menu.addAction("No recent files").setEnabled(False)

    def export(self, key: str, path: str | Path | None = None) -> bool:
        file_filter, writer = EXPORTS[key]
        if path is None:
            suffix = EXPORT_SUFFIXES[key]
            start = str(self.window.suggested_path(suffix))
            path, _ = QFileDialog.getSaveFileName(self.window, "Export", start, file_filter)
            if not path:
                return False
        try:
            writer(self.window.doc, path)
        except files.FileError as err:
            self.window.show_error("Could not export", str(err))
            return False
        self.window.statusBar().showMessage(f"Exported {Path(path).name}", 4000)
        return True

    def import_mask(self, path: str | Path | None = None) -> bool:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(
                self.window,
                "Import mask",
                str(self.window.document_folder()),
                "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif)",
            )
            if not path:
                return False
        try:
            files.import_mask_png(self.window.doc, path, self.window.pixel_limit)
        except files.FileError as err:
            self.window.show_error("Could not import the mask", str(err))
            return False
        return True

    def import_pose(self, path: str | Path | None = None) -> bool:
        """A pose JSON file as a new pose layer, with the confidence threshold chosen in a
        dialog (starting at the file's own convention)."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(
                self.window,
                "Import pose",
                str(self.window.document_folder()),
                "OpenPose JSON (*.json);;All files (*)",
            )
            if not path:
                return False
        doc = self.window.doc
        try:
            pose_file = read_pose_file(path, doc, self.window.pixel_limit)
        except files.FileError as err:
            self.window.show_error("Could not import the pose", str(err))
            return False
        dialog = PoseImportDialog(doc, pose_file, self.window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
        try:
            layer = import_pose(doc, pose_file, dialog.threshold)
        except files.FileError as err:
            self.window.show_error("Could not import the pose", str(err))
            return False
        self.window.select_tool(ToolId.POSE)
        self.window.statusBar().showMessage(
            f"Imported pose “{layer.name}”: {dialog.count_label.text()}", 6000
        )
        return True

    def add_dropped_model(self, path: Path) -> bool:
        """A model file dropped anywhere on the window joins the library (and is selected)."""
        if path.suffix.lower() not in MODEL_SUFFIXES:
            return False
        entry = self.picker.add_dropped_file(path)
        message = (
            f"Added {entry.display_name} to the model library"
            if entry.problem is None
            else f"{path.name} cannot be used: {entry.problem}"
        )
        self.window.statusBar().showMessage(message, 8000)
        return True

    # ---- autosave and recovery -------------------------------------------------------------

    def _watch(self, doc) -> None:
        self.autosave.watch(doc)
        if self._layers_doc is not None and shiboken6.isValid(self._layers_doc):
            self._layers_doc.layers_changed.disconnect(self._layers_changed)
        doc.layers_changed.connect(self._layers_changed)
        self._layers_doc = doc
        self._tint_hidden_for = (set(), False)

    def _layers_changed(self) -> None:
        """Once the result that hid the mask tint is gone (undone), show the tint again."""
        ids, landed = self._tint_hidden_for
        if not ids:
            return
        present = any(layer.id in ids for layer in self.window.doc.layers)
        if present:
            self._tint_hidden_for = (ids, True)
        elif landed:
            self._tint_hidden_for = (set(), False)
            self.window.canvas.set_mask_shown(True)

    def _document_changed(self, doc) -> None:
        for watched in self.autosave.watched_documents():
            if watched is not doc:
                self.autosave.unwatch(watched)
        self._watch(doc)
        if doc.path is not None:
            self.recent.add(doc.path)
        self.generate_panel.refresh_document()
        self.control_panel.sync_document()

    def offer_recovery(self, ask: Callable[[list], bool] | None = None) -> bool:
        """After a crash, offer the autosaved documents; returns True when one was restored."""
        items = self.autosave.recoverable()
        if not items:
            return False
        ask = ask or self._ask_recovery
        if not ask(items):
            for item in items:
                self.autosave.discard(item)
            return False
        newest = max(items, key=lambda item: item.saved_at)
        try:
            doc = self.autosave.recover(newest)
        except files.FileError as err:
            self.window.show_error("Could not recover", str(err))
            return False
        self.window.set_document(doc, f"{newest.title} (recovered)")
        return True

    def _ask_recovery(self, items: list) -> bool:
        names = "\n".join(f"• {item.title} — autosaved {item.saved_at:%H:%M}" for item in items)
        answer = QMessageBox.question(
            self.window,
            "Recover unsaved work?",
            f"Impasto did not close properly last time. Recover this work?\n\n{names}",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    # ---- settings ------------------------------------------------------------------------

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.store, self.window)
        dialog.start_folder = str(self.window.document_folder())  # where "Add folder" opens
        dialog.exec()

    def open_hub_dialog(self) -> None:
        HubDialog(self.store, self.scanner, self.window).exec()

    def _settings_changed(self, settings: Settings, changed: frozenset[str]) -> None:
        if changed & {"model_folders", "include_hf_cache", "engine", "remote_url"}:
            self._pick_after_scan = True  # remote: the server's models replace the picker's
        self.apply_settings(settings)

    def _pick_first_model(self, *_args: object) -> None:
        """After the user adds a model folder, leave the built-in classic engine for the last
        used checkpoint (or the newest one) as soon as the scan lists it."""
        if not self._pick_after_scan or self.scanner.is_scanning():
            return
        self._pick_after_scan = False
        if self.picker.checkpoint() is not None:
            return  # the user has a model already
        entry = first_pick(self.scanner.entries(), self.store.settings.checkpoint or None)
        if entry is not None and self.picker.set_checkpoint_path(entry.path):
            self.window.statusBar().showMessage(f"Model: {entry.display_name}", 6000)

    def apply_settings(self, settings: Settings, initial: bool = False) -> None:
        self.window.apply_settings(settings)
        if settings.autosave_minutes > 0:
            self.autosave.set_interval_minutes(settings.autosave_minutes)
            self.autosave.start()
        else:
            self.autosave.stop()
        engine_settings = engine_key(settings)  # local settings, or the remote server
        if initial:
            self._engine_settings = engine_settings
        elif not self._custom_engine and engine_settings != self._engine_settings:
            # only a change the engine cares about retires the worker (and its loaded model)
            self._engine_settings = engine_settings
            self.jobs.set_engine_factory(_engine_factory(settings))

    def _warm_up_soon(self, entry: object = None) -> None:
        if (
            entry is not None
            and not self._custom_engine
            and self._unsubscribe is not None
            and self.store.settings.engine != "remote"  # the server has the libraries
        ):
            self._warm_up_timer.start()

    def shutdown(self) -> None:
        """Stop background work; called once when the window closes."""
        if self._unsubscribe is None:
            return
        self._warm_up_timer.stop()
        self._unsubscribe()
        self._unsubscribe = None
        self.jobs.shutdown(10)
        self.scanner.shutdown(5000)
        self.autosave.shutdown()
        self.store.flush()  # the prompt history is written in the background
