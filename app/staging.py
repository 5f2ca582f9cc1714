"""Staging: the variants of one batch wait here until the user picks.

The current variant is shown on the canvas through the transient preview layer (never in the
history, never fed into a job); accepting lands the chosen variants as RESULT layers in one
undoable step; discarding drops them and changes nothing else.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

from app.document import Document
from app.generation.results import land_layers
from app.layers import Layer

log = logging.getLogger(__name__)

STAGING_PREVIEW_ID = -1


class Staging(QObject):
    changed = Signal()  # the staged set changed (new batch, accepted, discarded)
    current_changed = Signal(int)  # index of the variant shown on the canvas (-1: none)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc: Document | None = None
        self.job_id: int | None = None
        self.layers: list[Layer] = []
        self.current = -1

    # ---- queries ------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return bool(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def preview_owner(self) -> int:
        """The preview id staging draws with (negative, so it never matches a running job)."""
        return STAGING_PREVIEW_ID

    # ---- commands -----------------------------------------------------------------------

    def stage(self, doc: Document, job_id: int, layers: list[Layer]) -> None:
        """Add a batch to the waiting variants and show its first one. Variants of an earlier
        batch stay until decided, unless they belong to another document."""
        if self.active and doc is not self.doc:
            self.discard()
        first_new = len(self.layers)
        self.doc, self.job_id = doc, job_id
        self.layers.extend(layers)
        self.changed.emit()
        self.show(first_new)

    def show(self, index: int) -> None:
        """Show variant ``index`` on the canvas (wraps around)."""
        if not self.layers or self.doc is None:
            return
        index %= len(self.layers)
        layer = self.layers[index]
        assert layer.raster is not None
        self.current = index
        self.doc.show_preview(self.preview_owner, layer.raster.rect, layer.raster.data)
        self.current_changed.emit(index)

    def next(self) -> None:
        self.show(self.current + 1)

    def previous(self) -> None:
        self.show(self.current - 1)

    def refresh(self) -> None:
        """Show the current variant again (after a running job's preview went away)."""
        if self.active and self.doc is not None and self.doc.preview is None:
            self.show(max(self.current, 0))

    def accept(self, indices: list[int] | None = None) -> list[Layer]:
        """Land the variants at ``indices`` (default: the one shown) as one undoable step and
        discard the others. Returns the landed layers."""
        if not self.layers or self.doc is None:
            return []
        if indices is None:
            indices = [max(self.current, 0)]
        wanted = sorted({i % len(self.layers) for i in indices})
        chosen = [self.layers[i] for i in wanted]
        doc = self.doc
        self._clear()
        count = len(chosen)
        land_layers(doc, chosen, f"Accept {count} variant{'s' if count > 1 else ''}")
        return chosen

    def accept_all(self) -> list[Layer]:
        return self.accept(list(range(len(self.layers))))

    def discard(self) -> None:
        self._clear()

    def _clear(self) -> None:
        if self.doc is not None:
            self.doc.clear_preview(self.preview_owner)
        self.doc, self.job_id, self.layers, self.current = None, None, [], -1
        self.changed.emit()
        self.current_changed.emit(-1)
