"""Layer groups over the flat stack: the tree is read from ``parent_id`` and list order.

``Document.layers`` stays one flat list, bottom first, so commands keep addressing layers by id
and code that looks for a kind (the mask, results, poses) finds it wherever it sits. A group is a
layer of kind GROUP; its children are the layers whose ``parent_id`` is its id, in list order.
Structural edits keep each group directly above its descendants (post-order: children first, then
the group), so the list read top-down is what the layers panel shows, and they go through one
command, :class:`RestackLayers`, that swaps the whole order and parentage (undo restores both).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PySide6.QtGui import QUndoCommand

from app.layers import Layer, LayerKind

if TYPE_CHECKING:
    from app.document import Document

Parents = dict[int, int | None]


@dataclass
class Node:
    """A layer and, for a group, its children bottom first."""

    layer: Layer
    children: list[Node] = field(default_factory=list)


def build_tree(layers: Iterable[Layer]) -> list[Node]:
    """The root nodes bottom first. A layer whose parent is not among ``layers`` is a root."""
    layers = list(layers)
    nodes = {layer.id: Node(layer) for layer in layers}
    groups = {layer.id for layer in layers if layer.kind is LayerKind.GROUP}
    roots: list[Node] = []
    for layer in layers:
        parent = layer.parent_id
        if parent is not None and parent in groups and parent != layer.id:
            nodes[parent].children.append(nodes[layer.id])
        else:
            roots.append(nodes[layer.id])
    return roots


def post_order(nodes: Sequence[Node], _seen: set[int] | None = None) -> Iterator[Layer]:
    """Children before their group, bottom first: the order ``Document.layers`` keeps."""
    seen = set() if _seen is None else _seen
    for node in nodes:
        if node.layer.id in seen:  # a parent cycle from a damaged file: drop the repeat
            continue
        seen.add(node.layer.id)
        yield from post_order(node.children, seen)
        yield node.layer


def parent_map(layers: Iterable[Layer]) -> Parents:
    return {layer.id: layer.parent_id for layer in layers}


def ancestors(layers: Sequence[Layer], layer: Layer) -> list[Layer]:
    """The groups around ``layer``, innermost first."""
    by_id = {item.id: item for item in layers}
    out: list[Layer] = []
    parent = by_id.get(layer.parent_id) if layer.parent_id is not None else None
    while parent is not None and parent not in out:
        out.append(parent)
        parent = by_id.get(parent.parent_id) if parent.parent_id is not None else None
    return out


def depth(layers: Sequence[Layer], layer: Layer) -> int:
    return len(ancestors(layers, layer))


def descendants(layers: Sequence[Layer], group_id: int) -> list[Layer]:
    """Every layer inside the group (at any depth), in list order."""
    inside: set[int] = {group_id}
    out: list[Layer] = []
    changed = True
    while changed:  # parents may come after children in a list not yet normalised
        changed = False
        for layer in layers:
            if layer.id not in inside and layer.parent_id in inside:
                inside.add(layer.id)
                changed = True
    for layer in layers:
        if layer.id in inside and layer.id != group_id:
            out.append(layer)
    return out


def is_shown(layers: Sequence[Layer], layer: Layer) -> bool:
    """Visible itself and inside visible groups only."""
    return layer.visible and all(group.visible for group in ancestors(layers, layer))


def leaves(layers: Iterable[Layer]) -> Iterator[Layer]:
    """Every layer that is not a group, bottom first."""
    return (layer for layer in layers if layer.kind is not LayerKind.GROUP)


class RestackLayers(QUndoCommand):
    """A new order and parentage of the whole stack (group, ungroup, move in or out)."""

    def __init__(
        self,
        doc: Document,
        order: Sequence[int],
        parents: Parents,
        text: str,
    ):
        super().__init__(text)
        self.doc = doc
        self.before = ([layer.id for layer in doc.layers], parent_map(doc.layers))
        self.after = (list(order), dict(parents))

    def redo(self) -> None:
        self.doc._restack(*self.after)

    def undo(self) -> None:
        self.doc._restack(*self.before)


def locate(roots: list[Node]) -> dict[int, tuple[Node, list[Node], int | None]]:
    """For each layer id: its node, the sibling list holding it, and its parent's id."""
    out: dict[int, tuple[Node, list[Node], int | None]] = {}

    def walk(nodes: list[Node], parent: int | None) -> None:
        for node in nodes:
            if node.layer.id in out:
                continue
            out[node.layer.id] = (node, nodes, parent)
            walk(node.children, node.layer.id)

    walk(roots, None)
    return out


def flatten_tree(roots: list[Node]) -> tuple[list[int], Parents]:
    """Order (post-order, bottom first) and parentage of a tree built by :func:`build_tree`."""
    order: list[int] = []
    parents: Parents = {}

    def walk(nodes: list[Node], parent: int | None) -> None:
        for node in nodes:
            walk(node.children, node.layer.id)
            order.append(node.layer.id)
            parents[node.layer.id] = parent

    walk(roots, None)
    return order, parents
