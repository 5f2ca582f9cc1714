"""The "Download a model from Hugging Face" dialog: optional, for users who are online.

The download itself is ``inference.hub.download_model``, run off the UI thread by
:class:`app.background.Background`; its outcome and progress come back on the UI thread, so every
widget change happens there. Progress is coalesced (newest figures win), so a fast link cannot
flood the event loop. Offline, or when the hub refuses, the dialog shows the one-line reason
in its status line (no traceback, no message box). A cancelled or failed download leaves nothing
on disk (``download_model`` stages and cleans up). On success the destination root joins
``Settings.model_folders`` when the library does not already look there, and the library
rescans.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.background import Background, Task
from app.hub import (
    DEFAULT_IGNORE_PATTERNS,
    REPO_HINT,
    SINGLE_FILE_ALLOW,
    SINGLE_FILE_IGNORE,
    HubError,
    HubJob,
    HubTransport,
    RepoIdError,
    default_models_root,
    dest_for,
    format_progress,
    is_covered,
    one_line,
    parse_repo_id,
    run_download,
)
from app.library import ModelLibrary
from app.settings import SettingsError, SettingsStore
from inference.api import CancelToken

log = logging.getLogger(__name__)

TITLE = "Download a model from Hugging Face"
SPEED_WINDOW_S = 3.0
JOIN_TIMEOUT_S = 5.0


class HubDialog(QDialog):
    """Download a repository from the hub into a model folder, with progress and cancel."""

    download_started = Signal(str, object)  # repo id, destination Path
    progress_changed = Signal(object, object)  # bytes done, total bytes or None
    download_finished = Signal(object)  # destination Path
    download_failed = Signal(str)  # the one-line message shown in the dialog
    download_cancelled = Signal()

    def __init__(
        self,
        store: SettingsStore,
        scanner: ModelLibrary | None = None,
        parent: QWidget | None = None,
        transport: HubTransport | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(TITLE)
        self.setMinimumWidth(520)
        self._store = store
        self._scanner = scanner
        self._transport = transport
        self._background = Background("hub-download", parent=self)
        self._task: Task[tuple] | None = None
        self._job: HubJob | None = None
        self._cancel: CancelToken | None = None
        self._close_when_done = False
        self._samples: deque[tuple[float, int]] = deque()
        self._build()
        self._refresh()

    # ---- layout ------------------------------------------------------------------------------

    def _build(self) -> None:
        self.repo_edit = QLineEdit(self)
        self.repo_edit.setPlaceholderText(REPO_HINT)
        self.repo_edit.setClearButtonEnabled(True)
        self.repo_problem = QLabel(self)
        self.repo_problem.setObjectName("repoProblem")
        self.repo_problem.setWordWrap(True)

        self.folder_edit = QLineEdit(str(default_models_root(self._store)), self)
        self.browse_button = QPushButton("Choose…", self)
        self.browse_button.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)

        self.whole_folder_radio = QRadioButton(
            "The whole diffusers folder (configs and *.safetensors weights)", self
        )
        self.single_file_radio = QRadioButton(
            "Only *.safetensors checkpoints at the top of the repository", self
        )
        self.whole_folder_radio.setChecked(True)
        self._what = QButtonGroup(self)
        for radio in (self.whole_folder_radio, self.single_file_radio):
            self._what.addButton(radio)
        what_box = QVBoxLayout()
        what_box.addWidget(self.whole_folder_radio)
        what_box.addWidget(self.single_file_radio)

        self.dest_label = QLabel(self)
        self.dest_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Repository:", self.repo_edit)
        form.addRow("", self.repo_problem)
        form.addRow("Save into:", folder_row)
        form.addRow("Download:", what_box)
        form.addRow("Saved as:", self.dest_label)

        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_bar.setTextVisible(False)
        self.progress_label = QLabel(self)
        self.status_label = QLabel(self)
        self.status_label.setObjectName("hubStatus")
        self.status_label.setWordWrap(True)

        buttons = QDialogButtonBox(self)
        self.download_button = buttons.addButton("Download", QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_button = buttons.addButton("Cancel", QDialogButtonBox.ButtonRole.ActionRole)
        self.close_button = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.download_button.setDefault(True)
        self.download_button.clicked.connect(self.start_download)
        self.cancel_button.clicked.connect(self.cancel_download)
        self.close_button.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.status_label)
        layout.addWidget(buttons)

        for edit in (self.repo_edit, self.folder_edit):
            edit.textChanged.connect(self._inputs_changed)

    # ---- public ------------------------------------------------------------------------------

    def is_downloading(self) -> bool:
        return self._task is not None

    def repo_id(self) -> str:
        """The normalised repository id; raises ``RepoIdError`` when the text is not one."""
        return parse_repo_id(self.repo_edit.text())

    def models_root(self) -> Path | None:
        text = self.folder_edit.text().strip()
        return Path(text).expanduser() if text else None

    def destination(self) -> Path | None:
        """Where the download would go (``<root>/<name>``), or None while the input is invalid."""
        root = self.models_root()
        try:
            return dest_for(root, self.repo_id()) if root is not None else None
        except RepoIdError:
            return None

    def start_download(self) -> bool:
        """Validate and start on a worker thread; False (with the reason shown) when refused."""
        if self.is_downloading():
            return False
        try:
            job = self._make_job()
        except (RepoIdError, HubError) as error:
            self._show_status(str(error), error=True)
            return False
        self._job = job
        self._cancel = CancelToken()
        self._samples.clear()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_label.setText(format_progress(0, None, None))
        self._show_status(f"Downloading {job.repo_id}…")
        cancel = self._cancel
        self._task = self._background.submit(
            lambda task: run_download(task, job, cancel, self._transport),
            on_done=self._on_outcome,
            on_progress=self._on_progress,
        )
        self._refresh()
        self.download_started.emit(job.repo_id, job.dest)
        return True

    def cancel_download(self) -> None:
        """Ask the worker to stop; it does within one chunk and removes what it wrote."""
        if self._cancel is not None and self.is_downloading():
            self._cancel.cancel()
            self.cancel_button.setEnabled(False)
            self._show_status("Cancelling…")

    def wait(self, timeout_s: float = JOIN_TIMEOUT_S) -> bool:
        """Block until the worker thread ended (tests, shutdown). True when no thread is left."""
        return self._background.wait(timeout_s)

    def shutdown(self, timeout_s: float = JOIN_TIMEOUT_S) -> bool:
        """Cancel any download and wait for its thread (call before the application quits)."""
        self.cancel_download()
        return self.wait(timeout_s)

    def reject(self) -> None:
        # Closing mid-download cancels it; the dialog closes once the worker cleaned up, so no
        # thread outlives it and no staging folder is left behind.
        if self.is_downloading():
            self._close_when_done = True
            self.cancel_download()
            return
        super().reject()

    # ---- worker thread -----------------------------------------------------------------------

    # ---- UI thread ---------------------------------------------------------------------------

    def _make_job(self) -> HubJob:
        repo_id = self.repo_id()
        root = self.models_root()
        if root is None:
            raise HubError("Choose a folder to save the model into")
        dest = dest_for(root, repo_id)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise HubError(f"{dest} already exists and is not empty; choose another folder")
        if self.single_file_radio.isChecked():
            return HubJob(repo_id, root, dest, SINGLE_FILE_ALLOW, SINGLE_FILE_IGNORE)
        return HubJob(repo_id, root, dest, None, DEFAULT_IGNORE_PATTERNS)

    def _on_outcome(self, outcome: tuple) -> None:
        kind, *details = outcome
        if kind == "succeeded":
            self._on_succeeded(*details)
        elif kind == "failed":
            self._on_failed(*details)
        else:
            self._on_cancelled()

    def _on_progress(self, latest: tuple[int, int | None]) -> None:
        if not self.is_downloading():
            return
        done, total = latest
        now = time.monotonic()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW_S:
            self._samples.popleft()
        first_time, first_done = self._samples[0]
        speed = (done - first_done) / (now - first_time) if now - first_time > 0.2 else None
        if total:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(min(1000, done * 1000 // total))
        else:
            self.progress_bar.setRange(0, 0)  # size unknown: busy indicator
        self.progress_label.setText(format_progress(done, total, speed))
        self.progress_changed.emit(done, total)

    def _on_succeeded(self, dest: Path) -> None:
        job = self._finish()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(1000)
        message = f"Downloaded {job.repo_id} to {dest}"
        problem = self._add_to_library(job.root)
        self._show_status(f"{message}; {problem}" if problem else message, error=bool(problem))
        self.download_finished.emit(dest)
        self._close_if_asked()

    def _on_failed(self, message: str, offline: bool) -> None:
        self._finish()
        self._reset_progress()
        self._show_status(message, error=True)
        self.download_failed.emit(message)
        self._close_if_asked()

    def _on_cancelled(self) -> None:
        self._finish()
        self._reset_progress()
        self._show_status("Download cancelled; nothing was kept.")
        self.download_cancelled.emit()
        self._close_if_asked()

    def _finish(self) -> HubJob:
        """The worker sent its last signal: join it (it is returning) and unlock the inputs."""
        job = self._job
        assert job is not None, "a download ended that was never started"
        self.wait()
        self._task = None
        self._job = None
        self._cancel = None
        self._refresh()
        return job

    def _add_to_library(self, root: Path) -> str | None:
        """Make the library see ``root``; returns a problem in words, or None."""
        folders = self._store.settings.model_folders
        if not is_covered(root, folders):
            try:
                self._store.update(model_folders=[*folders, str(root)])
            except (SettingsError, OSError) as error:
                log.warning("cannot add %s to the model folders: %s", root, error)
                return one_line(f"could not add {root} to the model folders: {error}")
        if self._scanner is not None:
            # A store-driven scanner already rescans on a folder change; rescan() cancels that
            # one and starts afresh, and covers scanners built on a fixed folder list.
            self._scanner.rescan()
        return None

    def _close_if_asked(self) -> None:
        if self._close_when_done:
            self._close_when_done = False
            super().reject()

    def _reset_progress(self) -> None:
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_label.clear()

    def _show_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #c0392b;" if error else "")

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Save models into", self.folder_edit.text().strip()
        )
        if folder:
            self.folder_edit.setText(folder)

    def _inputs_changed(self) -> None:
        self._show_status("")  # an old outcome or refusal no longer describes the new input
        self._refresh()

    def _refresh(self) -> None:
        busy = self.is_downloading()
        problem = ""
        if self.repo_edit.text().strip():
            try:
                self.repo_id()
            except RepoIdError as error:
                problem = str(error)
        self.repo_problem.setText(problem)
        self.repo_problem.setVisible(bool(problem))
        dest = self.destination()
        self.dest_label.setText(str(dest) if dest is not None else "—")
        for widget in (
            self.repo_edit,
            self.folder_edit,
            self.browse_button,
            self.whole_folder_radio,
            self.single_file_radio,
        ):
            widget.setEnabled(not busy)
        self.download_button.setEnabled(not busy and dest is not None)
        self.cancel_button.setEnabled(busy and self._cancel is not None)
