"""Live painting controls for the generate panel, in one row so the panel's settings keep their
height: the Live toggle (Ctrl+L), Apply (Ctrl+Shift+L), Apply to a new layer (Ctrl+Alt+L) and the
model's few-step choice. The state (preset, seed, last frame time) is the Live button's text and
tooltip (``status_text``).

A view of the current session's :class:`app.generation.live.LiveMode`: it calls its verbs and
shows its signals; everything live painting does happens in app/. Switching documents turns live
mode off on the document left behind.
"""

from __future__ import annotations

import contextlib

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QWidget

from app.generation.live import FEW_STEP_OFF, FewStep, LiveMode
from app.generation.session import GenerationSession, GenerationSessions

LIVE_KEY = "Ctrl+L"
APPLY_KEY = "Ctrl+Shift+L"
APPLY_NEW_KEY = "Ctrl+Alt+L"
AUTO = "auto"


class LiveControls(QWidget):
    def __init__(self, sessions: GenerationSessions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("liveControls")
        self.sessions = sessions
        self.live: LiveMode | None = None
        self._syncing = False

        self.status_text = "Live off"
        self.live_button = QPushButton("Live", self)
        self.live_button.setObjectName("liveButton")
        self.live_button.setCheckable(True)
        self.apply_button = QPushButton("Apply", self)
        self.apply_button.setToolTip(
            f"Apply the live picture as a result layer, one undo step ({APPLY_KEY})"
        )
        self.apply_new_button = QPushButton("Apply + layer", self)
        self.apply_new_button.setToolTip(
            f"Apply the live picture and add a sketch layer above it to paint on ({APPLY_NEW_KEY})"
        )
        self.few_step_combo = QComboBox(self)
        self.few_step_combo.addItem("Auto", AUTO)
        for kind in FewStep:
            self.few_step_combo.addItem(kind.value, kind.value)
        self.few_step_combo.addItem("Not few-step", FEW_STEP_OFF)

        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.live_button, 1)
        row.addWidget(self.apply_button)
        row.addWidget(self.apply_new_button)
        row.addWidget(self.few_step_combo)
        self._set_status("Live off")

        self.live_button.toggled.connect(self._toggled)
        self.apply_button.clicked.connect(lambda: self.apply(new_layer=False))
        self.apply_new_button.clicked.connect(lambda: self.apply(new_layer=True))
        self.few_step_combo.currentIndexChanged.connect(self._mark_changed)
        for key, slot in (
            (LIVE_KEY, self.live_button.toggle),
            (APPLY_KEY, lambda: self.apply(new_layer=False)),
            (APPLY_NEW_KEY, lambda: self.apply(new_layer=True)),
        ):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)
        sessions.current_changed.connect(self._bind)
        self._bind(sessions.current)

    # ---- binding ------------------------------------------------------------------------------

    def _bind(self, session: GenerationSession) -> None:
        old = self.live
        if old is not None:
            old.stop()  # live painting belongs to the document left behind
            for signal, slot in (
                (old.active_changed, self._show_active),
                (old.status, self._show_status),
                (old.frame_shown, self._show_frame),
                (old.session.changed, self._session_changed),
            ):
                with contextlib.suppress(RuntimeError, TypeError):
                    signal.disconnect(slot)
        live = session.live
        self.live = live
        live.active_changed.connect(self._show_active)
        live.status.connect(self._show_status)
        live.frame_shown.connect(self._show_frame)
        session.changed.connect(self._session_changed)
        self._show_active(live.active)
        self._show_mark()

    def _session_changed(self, names: frozenset[str]) -> None:
        if names & {"model", "loras"}:
            self._show_mark()

    def _show_mark(self) -> None:
        live = self.live
        mark = live.model_mark() if live is not None else None
        index = self.few_step_combo.findData(mark or AUTO)
        self._syncing = True
        try:
            self.few_step_combo.setCurrentIndex(max(0, index))
        finally:
            self._syncing = False
        self._show_preset()

    def _show_preset(self) -> None:
        live = self.live
        if live is None:
            return
        automatic = live.session.values.model.path is not None and live.model_mark() is None
        preset = live.few_step_preset()
        shown = preset.kind.value if preset is not None and automatic else "off"
        self.few_step_combo.setItemText(0, f"Auto: {shown}" if automatic else "Auto")
        if live.active:
            return
        if preset is None:
            text = "Live off · not a few-step model: live uses your sampler, steps and CFG"
        else:
            text = f"Live off · {preset.describe()}"
        self._set_status(text)

    # ---- actions ------------------------------------------------------------------------------

    def _toggled(self, on: bool) -> None:
        live = self.live
        if self._syncing or live is None:
            return
        if on and not live.start():
            self._show_active(False)
        elif not on:
            live.stop()

    def apply(self, new_layer: bool) -> None:
        live = self.live
        if live is None or live.apply(new_layer=new_layer) is None:
            self._set_status("No live picture to apply yet")

    def _mark_changed(self, _index: int) -> None:
        live = self.live
        if self._syncing or live is None:
            return
        data = self.few_step_combo.currentData()
        live.mark_model(None if data == AUTO else str(data))
        self._show_preset()

    # ---- showing ------------------------------------------------------------------------------

    def _set_status(self, text: str) -> None:
        self.status_text = text
        self.live_button.setToolTip(
            f"Live painting: the frame re-renders after every stroke ({LIVE_KEY})\n{text}"
        )
        live = self.live
        preset = live.few_step_preset() if live is not None else None
        detected = f" (now: {preset.describe()})" if preset is not None else ""
        self.few_step_combo.setToolTip(
            "Few-step model (LCM, Turbo, Lightning, Hyper-SD): live mode uses its sampler, "
            f"steps and CFG, and puts yours back when it ends{detected}"
        )

    def _show_active(self, on: bool) -> None:
        self._syncing = True
        try:
            self.live_button.setChecked(on)
            self.live_button.setText("● Live" if on else "Live")
        finally:
            self._syncing = False
        live = self.live
        self.apply_button.setEnabled(on)
        self.apply_new_button.setEnabled(on)
        if on and live is not None:
            preset = live.preset
            detail = preset.describe() if preset is not None else "your sampler, steps and CFG"
            self._set_status(f"Live · seed {live.seed} · {detail}")
        else:
            self._show_preset()

    def _show_status(self, text: str) -> None:
        live = self.live
        if live is not None and live.active:
            preset = live.preset
            detail = f" · {preset.describe()}" if preset is not None else ""
            self._set_status(f"{text} · seed {live.seed}{detail}")

    def _show_frame(self, _job_id: int) -> None:
        live = self.live
        frame = live.frame if live is not None else None
        if live is not None and frame is not None:
            latency = (frame.shown_at - frame.requested_at) * 1000
            self._set_status(f"Live · frame in {latency:.0f} ms · seed {live.seed}")
            self.live_button.setText(f"● Live {latency:.0f} ms")
