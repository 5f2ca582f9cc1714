"""End to end through the real window (offscreen, real key and mouse events, the REAL engine on
tiny models): a reference image layer (IP-Adapter, style only) and a control layer driving a
T2I-Adapter, each set up in the control panel and generated with the Generate button."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog

from app.generation.request import Workflow, decode_image
from app.layers import LayerKind
from tests.windows import cpu_workspace
from widgets.layers_panel import ID_ROLE


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from tests.tiny_adapters import save_tiny_adapter, save_tiny_ip_adapter
    from tests.tiny_models import build_tiny_unet, save_tiny_single_file

    folder = tmp_path_factory.mktemp("refs-e2e")
    checkpoint = save_tiny_single_file(folder / "tiny-sd.safetensors")
    ip = save_tiny_ip_adapter(folder / "ip" / "models", build_tiny_unet())
    adapter = save_tiny_adapter(folder / "t2iadapter_sketch_tiny")
    painting = folder / "painting.png"
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(painting)
    return checkpoint, ip, adapter, painting


@pytest.fixture
def workspace(qtbot, tmp_path):
    with cpu_workspace(qtbot, tmp_path, show=True) as ws:
        yield ws


def _setup(qtbot, workspace, checkpoint):
    window = workspace.window
    assert window.new_document(64, 64)
    assert window.handle_dropped_path(str(checkpoint))  # the model joins the library
    panel = workspace.generate_panel
    panel.refresh_document()
    assert panel.workflow is Workflow.TXT2IMG
    panel.prompt_edit.setPlainText("a cat")
    panel.steps_spin.setValue(2)
    panel.random_seed_check.setChecked(False)
    panel.seed_spin.setValue(7)
    return window, panel


def _generate(qtbot, workspace, panel) -> np.ndarray:
    with qtbot.waitSignal(workspace.jobs.finished, timeout=120_000):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    return workspace.window.doc.layers_of(LayerKind.RESULT)[-1]


def _select(qtbot, window, layer) -> None:
    """A click on the layer's row in the layers panel makes it the active layer."""
    rows = window.layers_panel.list
    (item,) = [rows.item(r) for r in range(rows.count()) if rows.item(r).data(ID_ROLE) == layer.id]
    center = rows.visualItemRect(item).center()
    qtbot.mouseClick(rows.viewport(), Qt.MouseButton.LeftButton, pos=center)
    assert window.doc.active_layer is layer


def _click_box(qtbot, box) -> None:
    """A click on a check box's indicator (its middle may lie past its text)."""
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))


def _type_model(qtbot, controls, path) -> None:
    controls.model_edit.setFocus()
    controls.model_edit.clear()
    qtbot.keyClicks(controls.model_edit, str(path))
    qtbot.keyClick(controls.model_edit, Qt.Key.Key_Return)


def test_a_reference_layer_set_up_in_the_window_steers_the_generation(
    qtbot, workspace, files, monkeypatch
):
    checkpoint, ip, _adapter, painting = files
    window, panel = _setup(qtbot, workspace, checkpoint)
    controls = workspace.control_panel
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(painting), ""))
    qtbot.mouseClick(controls.buttons["add_reference_image"], Qt.MouseButton.LeftButton)
    layer = window.doc.active_layer
    assert layer.kind is LayerKind.CONTROL and layer.control.control_type == "reference"
    _type_model(qtbot, controls, ip)  # an IP-Adapter file: the layer stays a reference layer
    assert layer.control.model_path == str(ip) and layer.control.control_type == "reference"
    assert controls.style_only_check.isVisible()
    _click_box(qtbot, controls.style_only_check)
    assert layer.control.params["style_only"] is True
    styled = _generate(qtbot, workspace, panel)
    (unit,) = styled.recipe["references"]
    assert (unit["model"], unit["style_only"], unit["layer"]) == (
        "ip-adapter_tiny",
        True,
        layer.name,
    )
    assert np.array_equal(decode_image(unit["image"]), np.asarray(Image.open(painting)))

    # the same seed with the reference switched off (a click on "Use as … input"): it mattered
    _select(qtbot, window, layer)
    _click_box(qtbot, controls.enabled_check)
    assert not layer.control.enabled
    plain = _generate(qtbot, workspace, panel)
    assert "references" not in plain.recipe
    a, b = (r.raster.read(window.doc.rect).astype(int) for r in (styled, plain))
    assert np.abs(a - b).mean() > 0.5


def test_an_adapter_control_layer_set_up_in_the_window(qtbot, workspace, files, monkeypatch):
    checkpoint, _ip, adapter, painting = files
    window, panel = _setup(qtbot, workspace, checkpoint)
    plain = _generate(qtbot, workspace, panel)
    controls = workspace.control_panel
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(painting), ""))
    qtbot.mouseClick(controls.buttons["import_control_image"], Qt.MouseButton.LeftButton)
    layer = window.doc.active_layer
    assert layer.kind is LayerKind.CONTROL
    _type_model(qtbot, controls, adapter)
    assert layer.control.model_path == str(adapter)
    adapted = _generate(qtbot, workspace, panel)
    (unit,) = adapted.recipe["controls"]
    assert unit["model"] == adapter.name
    a, b = (r.raster.read(window.doc.rect).astype(int) for r in (adapted, plain))
    assert np.abs(a - b).mean() > 0.5


def test_depth_from_picture_in_the_window_previews_keeps_and_drives_an_adapter(
    qtbot, workspace, files, monkeypatch, tmp_path
):
    from tests.documents import random_photo
    from tests.tiny_adapters import save_tiny_depth_model

    checkpoint, _ip, adapter, _painting = files
    dpt = save_tiny_depth_model(tmp_path / "dpt-tiny")
    window = workspace.window
    photo = tmp_path / "photo.png"
    Image.fromarray(random_photo(64, 64, seed=3).layers[0].raster.data).save(photo)
    assert window.open_path(photo)
    assert window.handle_dropped_path(str(checkpoint))
    controls = workspace.control_panel
    steps = window.doc.history.count()
    layers = len(window.doc.layers)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(dpt))
    qtbot.mouseClick(controls.buttons["depth_from_picture"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(controls.keep_depth_button.isVisible, timeout=60_000)
    assert window.doc.preview is not None  # shown, outside the history
    assert window.doc.history.count() == steps and len(window.doc.layers) == layers
    qtbot.mouseClick(controls.keep_depth_button, Qt.MouseButton.LeftButton)
    depth = window.doc.active_layer
    assert depth.kind is LayerKind.CONTROL and depth.control.control_type == "depth"
    assert window.doc.preview is None and window.doc.history.count() == steps + 1
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(window.doc.layers) == layers  # one undo step
    qtbot.keyClick(
        window.canvas,
        Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    depth = window.doc.layer(depth.id)

    _select(qtbot, window, depth)
    _type_model(qtbot, controls, adapter)  # the depth map drives a T2I-Adapter
    panel = workspace.generate_panel
    panel.refresh_document()
    panel.prompt_edit.setPlainText("a room")
    panel.steps_spin.setValue(2)
    result = _generate(qtbot, workspace, panel)
    (unit,) = result.recipe["controls"]
    assert (unit["type"], unit["model"]) == ("depth", adapter.name)
    recorded = decode_image(unit["image"])
    assert np.array_equal(recorded, depth.raster.read(window.doc.rect)[..., :3])
