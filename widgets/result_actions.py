"""Context actions for a result layer: generate again with its recipe, use its seed, copy its
parameters. The lead's layer context menu adds ``result_actions(layer, panel, menu)``.

"Copy parameters" copies exactly the text an export of that layer carries
(``app.files.recipe_parameters``, the one A1111 formatter)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QWidget

from app.document import Document
from app.files import recipe_parameters
from app.generation.request import Workflow, decode_mask
from app.geometry import Rect
from app.layers import Layer, LayerKind
from inference.api import Recipe
from widgets.generate_panel import GeneratePanel


def generate_again(layer: Layer, panel: GeneratePanel) -> int | None:
    """Load the layer's recipe into the panel and queue it; returns the new job id.

    An inpaint recipe whose mask has since been cleared gets its mask back first (one undoable
    step), so "again" regenerates the same area."""
    if not layer.recipe:
        return None
    panel.apply_recipe(Recipe.from_json(layer.recipe).to_json())  # an old project's too
    doc = panel.document()
    if doc is not None:
        restore_recipe_mask(doc, layer.recipe)
    return panel.generate()


def restore_recipe_mask(doc: Document, recipe: dict[str, Any]) -> bool:
    """Paint the recipe's mask back when the document's inpaint mask is empty."""
    stored = Recipe.from_json(recipe)
    if stored.workflow != Workflow.INPAINT.value or not stored.mask or stored.crop_box is None:
        return False
    mask_layer = doc.ensure_mask_layer()
    if not mask_layer.raster.is_blank():
        return False
    x, y, w, h = stored.crop_box
    pixels = decode_mask(stored.mask)
    if pixels.shape != (h, w):
        return False
    area = Rect(x, y, w, h).intersected(doc.rect)
    if area.is_empty:
        return False
    cut = pixels[area.translated(-x, -y).slices(Rect(0, 0, w, h))]
    doc.replace_pixels(mask_layer.id, area, np.ascontiguousarray(cut), "Restore mask from recipe")
    return True


def use_seed(layer: Layer, panel: GeneratePanel) -> None:
    seed = Recipe.from_json(layer.recipe).seed
    if seed is not None:
        panel.use_seed(seed)


def copy_parameters(layer: Layer) -> str:
    """Put the A1111-style parameters text on the clipboard and return it."""
    text = recipe_parameters(layer.recipe or {})
    QGuiApplication.clipboard().setText(text)
    return text


def result_actions(layer: Layer, panel: GeneratePanel, parent: QWidget) -> list[QAction]:
    """The three actions for ``layer`` (empty unless it is a result layer with a recipe)."""
    if layer.kind is not LayerKind.RESULT or not layer.recipe:
        return []
    again = QAction("Generate again with this recipe", parent)
    again.triggered.connect(lambda: generate_again(layer, panel))
    seed = QAction(f"Use this seed ({Recipe.from_json(layer.recipe).seed})", parent)
    seed.triggered.connect(lambda: use_seed(layer, panel))
    copy = QAction("Copy parameters", parent)
    copy.triggered.connect(lambda: copy_parameters(layer))
    return [again, seed, copy]
