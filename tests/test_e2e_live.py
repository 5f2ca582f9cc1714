"""Live painting end to end, offscreen, through the real window: the REAL engine on a tiny model
named like an LCM checkpoint, strokes drawn with real mouse events on the canvas, the Live toggle,
Apply and the shortcuts pressed as keys."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from app.generation.live import LIVE_PREVIEW_ID
from app.layers import LayerKind
from inference.api import Sampler
from tests.widgets.pointer_helpers import drag
from tests.windows import cpu_workspace
from widgets.live_controls import LiveControls
from widgets.main_window import ToolId


@pytest.fixture(scope="module")
def tiny_lcm(tmp_path_factory):
    from tests.tiny_models import save_tiny_single_file

    return save_tiny_single_file(tmp_path_factory.mktemp("live") / "tiny-lcm.safetensors")


@pytest.fixture
def workspace(qtbot, tmp_path):
    with cpu_workspace(qtbot, tmp_path, show=True, size=(1200, 800)) as ws:
        yield ws


def open_photo(window, tmp_path) -> None:
    from tests.documents import random_photo

    photo = tmp_path / "photo.png"
    Image.fromarray(random_photo(96, 80, seed=3).layers[0].raster.data).save(photo)
    assert window.open_path(photo)
    window.canvas.set_zoom(1.0)
    window.canvas.pan_by(10 - window.canvas._offset.x(), 10 - window.canvas._offset.y())


def pen_stroke(window, y: int, x: int = 20) -> None:
    """A real mouse drag over the canvas (document = canvas - 10 px)."""
    drag(window.canvas, [(x, y), (x + 15, y + 3), (x + 30, y + 6)])


def test_live_painting_through_the_window(qtbot, workspace, tiny_lcm, tmp_path):
    window = workspace.window
    open_photo(window, tmp_path)
    assert window.handle_dropped_path(str(tiny_lcm))
    panel = workspace.generate_panel
    controls = panel.findChild(LiveControls)
    assert controls is not None and "Ctrl+L" in controls.live_button.toolTip()
    panel.prompt_edit.setPlainText("a red fox")
    panel.strength_spin.setValue(0.6)
    panel.sampler_combo.setCurrentIndex(panel.sampler_combo.findData("DPM++ 2M Karras"))
    panel.steps_spin.setValue(25)
    panel.guidance_spin.setValue(6.5)
    session = panel.session
    live = session.live
    frames: list[int] = []
    live.frame_shown.connect(frames.append)

    # Ctrl+L turns live on: the LCM preset is applied and shown, the frame renders once
    window.canvas.setFocus()
    with qtbot.waitSignal(live.frame_shown, timeout=60_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert live.active and controls.live_button.isChecked()
    assert panel.sampler_combo.currentText() == "LCM"
    assert (panel.steps_spin.value(), panel.guidance_spin.value()) == (4, 1.5)

    # every stroke drawn with the pen leads to a frame
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)
    assert window.current_tool_id is ToolId.SKETCH_PEN
    for y in (20, 40, 60):
        with qtbot.waitSignal(live.frame_shown, timeout=30_000):
            pen_stroke(window, y)
    assert len(frames) == 4
    doc = window.doc
    assert doc.preview is not None and doc.preview_job == LIVE_PREVIEW_ID
    assert not doc.layers_of(LayerKind.RESULT)  # nothing in the document yet
    assert doc.history.count() == 4  # the sketch layer and three strokes: no live step

    # a burst of 10 strokes in ~100 ms: at most 2 jobs
    qtbot.waitUntil(lambda: not live.busy, timeout=30_000)
    before = live.jobs_submitted
    for i in range(10):
        pen_stroke(window, 15 + 5 * i, x=40)
        qtbot.wait(10)
    qtbot.waitUntil(lambda: not live.busy, timeout=60_000)
    assert 1 <= live.jobs_submitted - before <= 2
    assert live.frame is not None

    # Ctrl+Shift+L applies: exactly one undoable result layer equal to the live picture
    shown = doc.preview.raster.data.copy()
    shown_rect = doc.preview.raster.rect
    steps_before = doc.history.count()
    qtbot.keyClick(
        window.canvas,
        Qt.Key.Key_L,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    (result,) = doc.layers_of(LayerKind.RESULT)
    assert doc.history.count() == steps_before + 1
    assert result.raster.rect == shown_rect
    np.testing.assert_array_equal(result.raster.data, shown)
    assert result.recipe["sampler"] == "LCM" and result.recipe["steps"] == 4
    assert result.recipe["seed"] == live.seed and result.recipe["prompt"] == "a red fox"
    window.undo()
    assert not doc.layers_of(LayerKind.RESULT)
    window.redo()
    assert len(doc.layers_of(LayerKind.RESULT)) == 1

    # Ctrl+L again: live ends, the user's sampler/steps/CFG come back
    qtbot.keyClick(window.canvas, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert not live.active and not controls.live_button.isChecked()
    values = session.values
    assert (values.sampler, values.steps, values.guidance) == (Sampler.DPMPP_2M_KARRAS, 25, 6.5)
    assert panel.sampler_combo.currentText() == "DPM++ 2M Karras"
    assert (panel.steps_spin.value(), panel.guidance_spin.value()) == (25, 6.5)
    assert doc.preview is None or doc.preview_job != LIVE_PREVIEW_ID


def test_live_edits_of_a_pose_render_again(qtbot, workspace, tiny_lcm, tmp_path):
    """A ControlNet pose layer in the document goes into every live frame; dragging a joint with
    the pose tool (an undoable pose edit) renders the frame again with the new figure."""
    from app.layers import ControlSettings
    from tests.tiny_models import save_tiny_controlnet

    window = workspace.window
    open_photo(window, tmp_path)
    assert window.handle_dropped_path(str(tiny_lcm))
    qtbot.keyClick(window.canvas, Qt.Key.Key_P)
    assert window.current_tool_id is ToolId.POSE
    qtbot.mouseClick(window.canvas, Qt.MouseButton.LeftButton, pos=QPoint(10 + 30, 10 + 40))
    doc = window.doc
    (pose_layer,) = doc.layers_of(LayerKind.POSE)
    net = save_tiny_controlnet(tmp_path / "control-openpose")
    settings = ControlSettings(control_type="openpose", model_path=str(net))
    doc.set_layer_property(pose_layer.id, "control", settings)
    live = workspace.generate_panel.session.live
    requests = []
    workspace.jobs.job_queued.connect(
        lambda job_id: requests.append(workspace.jobs.job(job_id).plan.request)
    )
    window.canvas.setFocus()
    with qtbot.waitSignal(live.frame_shown, timeout=60_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    first = requests[-1]
    assert len(first.controls) == 1 and first.controls[0].control_type == "openpose"
    wrist = doc.layer(pose_layer.id).pose.people[0].body[4]  # right wrist
    grab = (round(10 + wrist.x), round(10 + wrist.y))
    with qtbot.waitSignal(live.frame_shown, timeout=60_000):
        drag(window.canvas, [grab, (grab[0] - 4, grab[1] + 6), (grab[0] - 8, grab[1] + 14)])
    moved = doc.layer(pose_layer.id).pose.people[0].body[4]
    assert (moved.x, moved.y) != (wrist.x, wrist.y)  # the joint followed the mouse
    second = requests[-1]
    assert second is not first
    assert not np.array_equal(first.controls[0].image, second.controls[0].image)
    live.stop()
