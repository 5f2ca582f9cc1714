"""End to end, offscreen, through the window: paint a mask with the mouse, press Generate (the REAL
engine on a tiny single-file model), export the picture as PNG, JPEG and WebP, and read the recipe
back the way AUTOMATIC1111 reads it (its infotext parser, and piexif for JPEG/WebP EXIF). "Copy
parameters" on the result layer puts exactly the exported text on the clipboard.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from app.generation.request import ResolutionPolicy, Workflow
from app.layers import LayerKind
from tests.a1111 import a1111_parse, piexif_user_comment
from tests.widgets.pointer_helpers import drag
from tests.windows import cpu_workspace
from widgets.layers_panel import ID_ROLE
from widgets.main_window import ToolId

# ---- the window ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from tests.tiny_models import save_tiny_single_file

    return save_tiny_single_file(tmp_path_factory.mktemp("recipe") / "tiny-sd.safetensors")


@pytest.fixture
def workspace(qtbot, tmp_path):
    with cpu_workspace(qtbot, tmp_path) as ws:
        yield ws


def test_an_inpaint_exported_from_the_window_reads_back_in_a1111(
    qtbot, workspace, tiny_checkpoint, tmp_path
):
    from inference.models import file_sha256
    from tests.documents import random_photo

    window = workspace.window
    photo = tmp_path / "photo.png"
    Image.fromarray(random_photo(96, 80, seed=3).layers[0].raster.data).save(photo)
    assert window.open_path(photo)
    assert window.handle_dropped_path(str(tiny_checkpoint))  # the model joins the library
    window.canvas.set_zoom(1.0)
    window.canvas.pan_by(10 - window.canvas._offset.x(), 10 - window.canvas._offset.y())
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert window.current_tool_id is ToolId.MASK_BRUSH
    drag(window.canvas, [(40, 40), (60, 50), (70, 60)])  # a mask stroke over doc (30..60, 30..50)

    panel = workspace.generate_panel
    panel.refresh_document()
    assert panel.workflow is Workflow.INPAINT
    panel.prompt_edit.setPlainText('a red fox, "sly": 狐')
    panel.negative_edit.setPlainText("blurry,\nlow quality")
    panel.steps_spin.setValue(2)
    panel.guidance_spin.setValue(6.5)
    panel.random_seed_check.setChecked(False)
    panel.seed_spin.setValue(4242)
    panel.resolution_combo.setCurrentIndex(
        panel.resolution_combo.findData(ResolutionPolicy.EXACT.value)
    )
    with qtbot.waitSignal(workspace.jobs.finished, timeout=120_000):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    (layer,) = window.doc.layers_of(LayerKind.RESULT)

    assert workspace.export("flat", tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as image:
        png_text = image.text["parameters"]
    read = a1111_parse(png_text)
    assert read["Prompt"] == 'a red fox, "sly": 狐'
    assert read["Negative prompt"] == "blurry,\nlow quality"
    assert read["Steps"] == "2" and read["Sampler"] == panel.sampler_combo.currentText()
    assert read["CFG scale"] == "6.5" and read["Seed"] == "4242"
    width, height = int(read["Size-1"]), int(read["Size-2"])
    assert [width, height] == layer.recipe["size"]  # what the engine generated at
    assert width % 8 == 0 and height % 8 == 0 and width * height < 96 * 80 * 2  # the crop, exact
    assert read["Model hash"] == file_sha256(tiny_checkpoint)[:10]
    assert read["Model"] == "tiny-sd" and read["Denoising strength"] == "0.75"

    for name in ("out.jpg", "out.webp"):
        assert workspace.export("flat", tmp_path / name)
        with Image.open(tmp_path / name) as image:
            exif = image.info["exif"]
        assert piexif_user_comment(exif) == png_text

    # the user clicks the result in the layers panel, opens Layer > Result, "Copy parameters"
    layer_list = window.layers_panel.list
    (item,) = [
        layer_list.item(row)
        for row in range(layer_list.count())
        if layer_list.item(row).data(ID_ROLE) == layer.id
    ]
    center = layer_list.visualItemRect(item).center()
    qtbot.mouseClick(layer_list.viewport(), Qt.MouseButton.LeftButton, pos=center)
    assert window.doc.active_layer is layer
    QGuiApplication.clipboard().setText("")
    workspace.result_menu.aboutToShow.emit()
    (copy,) = [a for a in workspace.result_menu.actions() if a.text() == "Copy parameters"]
    copy.trigger()
    assert QGuiApplication.clipboard().text() == png_text


def test_the_old_byte_typed_comment_is_what_piexif_refused(tmp_path):
    """The reader above fails on the EXIF Pillow writes by itself (type BYTE): so the test above
    would catch a return to it."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + "x".encode("utf-16-be")
    with pytest.raises(ValueError, match="not UNDEFINED"):
        piexif_user_comment(exif.tobytes())


def test_convert_png_to_jpeg_carries_the_recipe(tmp_path):
    from app.cli_convert import main
    from inference.parameters import format_parameters, write_png
    from inference.recipe import Recipe

    text = format_parameters(
        Recipe(prompt="a fox", steps=20, sampler="Euler a", guidance=7.0, seed=1, size=(64, 64))
    )
    write_png(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8), text)
    for name in ("b.jpg", "b.webp", "b.png"):
        assert main([str(tmp_path / "a.png"), str(tmp_path / name)]) == 0
        with Image.open(tmp_path / name) as image:
            carried = image.text.get("parameters") if name.endswith(".png") else None
            exif = image.info.get("exif")
        assert (carried or piexif_user_comment(exif)) == text
    assert main([str(tmp_path / "b.jpg"), str(tmp_path / "c.png")]) == 0  # and back from EXIF
    with Image.open(tmp_path / "c.png") as image:
        assert image.text["parameters"] == text
