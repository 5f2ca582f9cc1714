"""Context actions for a result layer: generate again with its recipe, use its seed, copy its
parameters. The lead's layer context menu adds ``result_actions(layer, panel, menu)``."""

from __future__ import annotations

from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QWidget

from app.layers import Layer, LayerKind
from app.request_builder import recipe_parameters_text
from widgets.generate_panel import GeneratePanel


def generate_again(layer: Layer, panel: GeneratePanel) -> int | None:
    """Load the layer's recipe into the panel and queue it; returns the new job id."""
    if not layer.recipe:
        return None
    panel.apply_recipe(layer.recipe)
    return panel.generate()


def use_seed(layer: Layer, panel: GeneratePanel) -> None:
    seed = (layer.recipe or {}).get("seed")
    if seed is not None:
        panel.use_seed(int(seed))


def copy_parameters(layer: Layer) -> str:
    """Put the A1111-style parameters text on the clipboard and return it."""
    text = recipe_parameters_text(layer.recipe or {})
    QGuiApplication.clipboard().setText(text)
    return text


def result_actions(layer: Layer, panel: GeneratePanel, parent: QWidget) -> list[QAction]:
    """The three actions for ``layer`` (empty unless it is a result layer with a recipe)."""
    if layer.kind is not LayerKind.RESULT or not layer.recipe:
        return []
    again = QAction("Generate again with this recipe", parent)
    again.triggered.connect(lambda: generate_again(layer, panel))
    seed = QAction(f"Use this seed ({layer.recipe.get('seed')})", parent)
    seed.triggered.connect(lambda: use_seed(layer, panel))
    copy = QAction("Copy parameters", parent)
    copy.triggered.connect(lambda: copy_parameters(layer))
    return [again, seed, copy]
