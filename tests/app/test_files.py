"""app.files: the one door — typed errors, projects, atomic saves with backup, exports, imports."""

from __future__ import annotations

import errno
import json
import tempfile

import numpy as np
import pytest
from PIL import Image

from app import files
from app.document import Document
from app.files import (
    FileError,
    ImageLoadError,
    ImageSaveError,
    OpenError,
    SaveError,
    UnsupportedFormatError,
)
from app.io import ora
from app.io.atomic import atomic_save, backup_path
from app.io.layer_data import flatten
from app.layers import Layer, LayerKind
from inference.openpose import parse_pose_json
from inference.openpose_render import render_pose
from inference.parameters import parse_parameters
from tests.app.io_samples import assert_same_layers, every_kind_document


@pytest.fixture
def doc():
    return every_kind_document()


def test_error_hierarchy():
    assert issubclass(ImageLoadError, OpenError) and issubclass(OpenError, FileError)
    assert issubclass(ImageSaveError, SaveError) and issubclass(SaveError, FileError)
    assert issubclass(FileError, Exception)


def test_open_document_dispatches_on_extension(doc, tmp_path):
    project = files.save_project(doc, tmp_path / "p.ora")
    files.export_psd(doc, tmp_path / "p.psd")
    Image.new("RGBA", (5, 4), (1, 2, 3, 4)).save(tmp_path / "i.png")
    assert_same_layers(doc, files.open_document(project))
    assert files.open_document(project).path == project
    assert len(files.open_document(tmp_path / "p.psd").layers) == len(doc.layers)  # no 2nd mask
    image_doc = files.open_document(tmp_path / "i.png")
    assert image_doc.path is None and image_doc.layers[0].raster.data[0, 0].tolist() == [1, 2, 3, 4]
    with pytest.raises(FileError, match="unsupported"):
        files.open_document(tmp_path / "x.xyz")


def test_save_project_sets_path_and_clean_state(doc, tmp_path):
    doc.set_opacity(doc.layers[0].id, 0.25)
    assert doc.is_modified
    path = files.save_project(doc, tmp_path / "named")  # extension added
    assert path.name == "named.ora" and doc.path == path and not doc.is_modified
    doc.set_opacity(doc.layers[0].id, 0.75)
    assert files.save_project(doc) == path  # plain Save reuses the path
    assert files.open_document(path).layers[0].opacity == 0.75


def test_save_project_refuses_other_formats_and_unnamed_documents(tmp_path):
    doc = Document.blank(8, 8)
    with pytest.raises(SaveError, match="choose a file name"):
        files.save_project(doc)
    with pytest.raises(UnsupportedFormatError, match="Export"):
        files.save_project(doc, tmp_path / "x.psd")
    assert not list(tmp_path.iterdir())


def test_second_save_keeps_previous_version_as_backup(tmp_path):
    doc = Document.blank(8, 8, fill=(10, 10, 10, 255))
    path = files.save_project(doc, tmp_path / "b.ora")
    first = path.read_bytes()
    doc.set_opacity(doc.layers[0].id, 0.5)
    files.save_project(doc)
    assert backup_path(path).read_bytes() == first
    assert (
        files.open_document(backup_path(path).rename(tmp_path / "old.ora")).layers[0].opacity == 1
    )
    assert files.open_document(path).layers[0].opacity == 0.5


def test_interrupted_save_keeps_the_old_file(tmp_path, monkeypatch):
    doc = Document.blank(16, 16)
    path = files.save_project(doc, tmp_path / "keep.ora")
    before = path.read_bytes()
    real_write = ora.write_ora

    def write_then_fail(document, target, **options):
        real_write(document, target, **options)  # the temp file is complete...
        with open(target, "r+b") as handle:
            handle.truncate(100)  # ...then a crash halfway through rewriting it
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ora, "write_ora", write_then_fail)
    doc.set_opacity(doc.layers[0].id, 0.1)
    with pytest.raises(SaveError, match="disk is full"):
        files.save_project(doc)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.ora"]  # no temp file left
    assert doc.is_modified  # still unsaved


def test_save_into_missing_or_read_only_folder(tmp_path, monkeypatch):
    doc = Document.blank(8, 8)
    with pytest.raises(SaveError, match="does not exist"):
        files.save_project(doc, tmp_path / "nowhere" / "x.ora")

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # running as root ignores chmod
    with pytest.raises(SaveError, match="read-only"):
        files.save_project(doc, tmp_path / "x.ora")
    assert doc.path is None


def test_atomic_save_on_keyboard_interrupt_removes_temp(tmp_path):
    target = tmp_path / "t.bin"
    target.write_bytes(b"old")

    def interrupted(tmp):
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_save(target, interrupted)
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]


def test_flat_png_carries_the_chosen_recipe(doc, tmp_path):
    path = tmp_path / "flat.png"
    files.export_flat_with_recipe(doc, path)
    with Image.open(path) as image:
        text = image.text["parameters"]  # iTXt (non-Latin-1 prompt) read back by Pillow
        pixels = np.asarray(image)
    recipe = doc.layers[2].recipe
    parsed = parse_parameters(text)
    assert parsed.prompt == recipe["prompt"]
    assert parsed.negative_prompt == recipe["negative_prompt"]
    assert parsed.guidance == recipe["cfg"]  # an older project's engine-shaped recipe
    for key in ("seed", "steps", "sampler", "size", "model_hash", "strength"):
        assert getattr(parsed, key) == recipe[key], key
    assert np.array_equal(pixels, flatten(doc.layers, doc.rect))


def test_jpeg_and_webp_carry_the_recipe_in_exif(doc, tmp_path):
    for name in ("flat.jpg", "flat.webp"):
        files.export_flat_with_recipe(doc, tmp_path / name)
        with Image.open(tmp_path / name) as image:
            comment = image.getexif().get_ifd(0x8769)[0x9286]
        assert comment.startswith(b"UNICODE\0")
        assert parse_parameters(comment[8:].decode("utf-16-be")).seed == 1234567890123


def test_no_result_means_no_parameters(tmp_path):
    doc = Document.blank(8, 8)
    files.export_flat_with_recipe(doc, tmp_path / "plain.png")
    with Image.open(tmp_path / "plain.png") as image:
        assert "parameters" not in image.info


def test_chosen_result_prefers_argument_then_active_then_topmost(doc):
    result = doc.layers[2]
    assert files.chosen_result(doc) is result
    second = doc.add_layer(LayerKind.RESULT, recipe={"prompt": "second"})
    assert files.chosen_result(doc) is second  # active
    doc.set_active(doc.layers[0].id)
    assert files.chosen_result(doc) is second  # topmost visible
    assert files.chosen_result(doc, result.id) is result


def test_chosen_result_skips_results_hidden_by_their_group(doc, tmp_path):
    below = doc.layers[2]
    above = doc.add_layer(LayerKind.RESULT, recipe={"prompt": "above", "seed": 7})
    group = doc.group_layers([above.id], "hidden group")
    doc.set_visible(group.id, False)
    assert above.visible and not doc.is_shown(above)
    doc.set_active(above.id)  # active, but not in the picture
    assert files.chosen_result(doc) is below
    doc.set_active(doc.layers[0].id)
    assert files.chosen_result(doc) is below  # the topmost *shown* result
    files.export_flat_with_recipe(doc, tmp_path / "flat.png")
    with Image.open(tmp_path / "flat.png") as image:
        assert "above" not in image.info["parameters"]
    doc.set_visible(group.id, True)
    assert files.chosen_result(doc) is above


def test_mask_export_and_import_round_trip(doc, tmp_path):
    path = tmp_path / "mask.png"
    files.export_mask_png(doc, path)
    with Image.open(path) as image:
        assert image.mode == "L" and image.size == (doc.width, doc.height)
        exported = np.asarray(image)
    assert np.array_equal(exported, doc.mask_layer.raster.read(doc.rect))

    target = Document.blank(doc.width, doc.height)
    files.import_mask_png(target, path)
    assert np.array_equal(target.mask_layer.raster.read(target.rect), exported)
    assert target.mask_layer.raster.rect.area < target.width * target.height  # stays sparse
    target.history.undo()
    assert target.mask_layer.raster.is_blank()


def test_mask_import_scales_converts_and_creates_the_layer(tmp_path):
    doc = Document(20, 10)
    doc._insert_layer(Layer(LayerKind.IMAGE, "bg"), 0)
    rgba = np.zeros((5, 10, 4), np.uint8)
    rgba[:, 5:] = (255, 255, 255, 255)  # right half white and opaque
    rgba[:, :5] = (255, 255, 255, 0)  # left half white but transparent: not masked
    Image.fromarray(rgba).save(tmp_path / "m.png")
    files.import_mask_png(doc, tmp_path / "m.png")
    mask = doc.mask_layer.raster.read(doc.rect)
    assert mask[:, :9].max() == 0 and mask[:, 11:].min() == 255
    doc.history.undo()
    assert doc.mask_layer is None  # the whole import, layer included, is one step


def test_mask_import_errors_are_typed(doc, tmp_path):
    with pytest.raises(OpenError, match="not found"):
        files.import_mask_png(doc, tmp_path / "none.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(OpenError):
        files.import_mask_png(doc, tmp_path / "bad.png")
    doc.set_locked(doc.mask_layer.id, True)
    Image.new("L", (4, 4), 255).save(tmp_path / "ok.png")
    with pytest.raises(FileError, match="locked"):
        files.import_mask_png(doc, tmp_path / "ok.png")


def test_pose_exports(doc, tmp_path):
    files.export_pose_json(doc, tmp_path / "pose.json")
    data = json.loads((tmp_path / "pose.json").read_text())
    pose = doc.layers[4].pose
    assert (data["canvas_width"], data["canvas_height"]) == (doc.width, doc.height)
    back = parse_pose_json(data)
    assert [[(p.x, p.y) for p in person.body if p.visible] for person in back.people] == [
        [(p.x, p.y) for p in person.body if p.visible] for person in pose.people
    ]
    files.export_pose_png(doc, tmp_path / "pose.png")
    with Image.open(tmp_path / "pose.png") as image:
        assert np.array_equal(np.asarray(image), render_pose(pose, doc.width, doc.height))


def test_pose_export_without_pose(tmp_path):
    with pytest.raises(SaveError, match="no pose layer"):
        files.export_pose_json(Document.blank(8, 8), tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()


def test_export_extension_checks(doc, tmp_path):
    with pytest.raises(UnsupportedFormatError):
        files.export_psd(doc, tmp_path / "x.png")
    with pytest.raises(UnsupportedFormatError):
        files.export_mask_png(doc, tmp_path / "x.jpg")
    with pytest.raises(FileError):
        files.export_flat(doc, tmp_path / "x.gif")


def test_latin1_parameters_use_a_text_chunk_and_parse_back(tmp_path):
    doc = Document.blank(8, 8)
    doc.add_layer(
        LayerKind.RESULT, recipe={"prompt": "café", "seed": 5, "steps": 3, "sampler": "Euler"}
    )
    files.export_flat_with_recipe(doc, tmp_path / "latin.png")
    raw = (tmp_path / "latin.png").read_bytes()
    assert b"tEXtparameters" in raw  # tEXt for Latin-1, iTXt otherwise; both read back
    with Image.open(tmp_path / "latin.png") as image:
        parsed = parse_parameters(image.text["parameters"])
    assert (parsed.prompt, parsed.seed, parsed.steps) == ("café", 5, 3)


def test_project_pixel_limit_from_settings(doc, tmp_path):
    path = files.save_project(doc, tmp_path / "limit.ora")
    with pytest.raises(files.LayerBoundsError, match="limit"):
        files.open_document(path, pixel_limit=1000)


# ---- killed saves, symbolic links ------------------------------------------------------------

KILLED_SAVE = """
import os, sys
from pathlib import Path
from app.io.atomic import atomic_save

def write(tmp: Path) -> None:
    tmp.write_bytes(b"\\0" * 100_000)
    print("writing", flush=True)
    os.kill(os.getpid(), 9)  # killed in the middle of the save

atomic_save(Path(sys.argv[1]), write)
"""


def test_temp_files_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    target = tmp_path / "work.ora"
    target.write_bytes(b"old")
    for _ in range(3):
        run = subprocess.run(
            [sys.executable, "-c", KILLED_SAVE, str(target)],
            cwd=repo,
            env={**os.environ, "PYTHONPATH": str(repo)},
            capture_output=True,
            timeout=60,
        )
        assert run.returncode == -9 and b"writing" in run.stdout
    parts = sorted(tmp_path.glob(".work.ora.*.part"))
    assert len(parts) == 3 and target.read_bytes() == b"old"
    foreign = tmp_path / ".notes.txt.part"  # not our naming (no 8-character tag)
    foreign.write_bytes(b"keep")
    fresh_elsewhere = tmp_path / ".other.ora.zzzz9999.part"  # ours, but young: maybe in use
    fresh_elsewhere.write_bytes(b"x")
    old = time.time() - 3600
    for part in (*parts, foreign):
        os.utime(part, (old, old))
    atomic_save(target, lambda tmp: tmp.write_bytes(b"new"))
    assert target.read_bytes() == b"new"
    assert not any(part.exists() for part in parts)
    assert foreign.exists() and fresh_elsewhere.exists()


def test_a_save_in_progress_keeps_its_temp_file(tmp_path):
    import os
    import time

    from app.io.atomic import remove_stale_parts

    target = tmp_path / "a.ora"
    seen = []

    def write(tmp):
        tmp.write_bytes(b"data")
        old = time.time() - 3600
        os.utime(tmp, (old, old))
        seen.append(remove_stale_parts(tmp_path))  # another save starting meanwhile
        assert tmp.exists()  # locked by this save: not touched

    atomic_save(target, write)
    assert seen == [0] and target.read_bytes() == b"data"


def test_saving_over_a_symlink_saves_through_it(tmp_path):
    real_folder = tmp_path / "real"
    real_folder.mkdir()
    real = real_folder / "work.ora"
    real.write_bytes(b"v1")
    link = tmp_path / "link.ora"
    link.symlink_to(real)
    atomic_save(link, lambda tmp: tmp.write_bytes(b"v2"))
    assert link.is_symlink() and real.read_bytes() == b"v2" and link.read_bytes() == b"v2"
    backup = backup_path(real)
    assert backup.read_bytes() == b"v1" and not backup.is_symlink()
    atomic_save(link, lambda tmp: tmp.write_bytes(b"v3"))
    assert backup.read_bytes() == b"v2" and real.read_bytes() == b"v3"
    assert not backup_path(link).exists()  # nothing left next to the link


def test_saving_through_a_dangling_link_creates_its_target(tmp_path):
    link = tmp_path / "link.ora"
    link.symlink_to(tmp_path / "new.ora")
    atomic_save(link, lambda tmp: tmp.write_bytes(b"x"))
    assert link.is_symlink() and (tmp_path / "new.ora").read_bytes() == b"x"


def test_saving_over_a_symlink_loop_is_refused(tmp_path):
    a, b = tmp_path / "a.ora", tmp_path / "b.ora"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(files.SaveError, match="loops"):
        atomic_save(a, lambda tmp: tmp.write_bytes(b"x"))
    assert a.is_symlink() and b.is_symlink()


def test_unreadable_file_is_permission_denied_not_damaged(tmp_path, monkeypatch):
    from app import image_io

    path = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(path)

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(image_io, "open", refuse, raising=False)  # as root, chmod 0 reads fine
    for name in ("secret.png", "secret.ora", "secret.psd"):
        target = tmp_path / name
        if not target.exists():
            target.write_bytes(path.read_bytes())
        with pytest.raises(files.OpenError, match="permission denied") as caught:
            files.open_document(target)
        assert "damaged" not in str(caught.value)


def test_fifo_is_refused_without_reading(tmp_path):
    import os

    fifo = tmp_path / "pipe.ora"
    os.mkfifo(fifo)  # opening it for reading would block forever
    with pytest.raises(files.OpenError, match="not a regular file"):
        files.open_document(fifo)


def test_document_needing_more_memory_than_available_is_refused_before_decoding(
    tmp_path, monkeypatch
):
    from app import image_io

    doc = Document.blank(200, 100)
    path = tmp_path / "doc.ora"
    files.save_project(doc, path)
    monkeypatch.setattr(image_io, "available_memory", lambda: 100_000)
    decoded = []
    monkeypatch.setattr(ora, "decode_png", lambda *a, **k: decoded.append(1))
    with pytest.raises(files.LayerBoundsError, match=r"needs about .* GB of memory"):
        files.open_document(path)
    assert decoded == []
    with pytest.raises(files.ImageLoadError, match="memory"):
        image = tmp_path / "photo.png"
        Image.new("RGB", (200, 100)).save(image)
        files.open_document(image)


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_user_comment_is_undefined_with_unicode_prefix_as_a1111_writes_it(doc, tmp_path, suffix):
    """piexif (AUTOMATIC1111's reader) loads UserComment only when typed UNDEFINED (7)."""
    import struct

    path = tmp_path / f"out{suffix}"
    files.export_flat_with_recipe(doc, path)
    with Image.open(path) as image:
        raw = image.info["exif"]
    tiff = raw[6:] if raw.startswith(b"Exif\x00\x00") else raw
    order = ">" if tiff[:2] == b"MM" else "<"

    def entries(offset):
        (count,) = struct.unpack(order + "H", tiff[offset : offset + 2])
        for n in range(count):
            yield struct.unpack(order + "HHII", tiff[offset + 2 + 12 * n : offset + 14 + 12 * n])

    (ifd0,) = struct.unpack(order + "I", tiff[4:8])
    exif_at = next(value for tag, _t, _c, value in entries(ifd0) if tag == 0x8769)
    _tag, kind, count, at = next(e for e in entries(exif_at) if e[0] == 0x9286)
    assert kind == 7  # UNDEFINED, not BYTE
    comment = tiff[at : at + count]
    assert comment.startswith(b"UNICODE\x00")
    text = comment[8:].decode("utf-16-be")
    assert parse_parameters(text).seed == 1234567890123


def test_opening_a_project_removes_its_own_stale_temp_files(tmp_path):
    import os
    import time

    project = files.save_project(Document.blank(8, 8), tmp_path / "work.ora")
    mine = tmp_path / ".work.ora.k3j9x_2a.part"
    backup_part = tmp_path / ".work.ora~.part"
    other = tmp_path / ".other.ora.k3j9x_2a.part"  # another project's: left for its next save
    for part in (mine, backup_part, other):
        part.write_bytes(b"x")
        os.utime(part, (time.time() - 3600,) * 2)
    files.open_document(project)
    assert not mine.exists() and not backup_part.exists() and other.exists()


def test_recent_list_and_names_with_nul_or_loops_never_raise(tmp_path):
    from app.recent import RecentFiles

    store = tmp_path / "recent.json"
    store.write_text(json.dumps(["/ok/a.ora", "bad\u0000name.ora", 5, ""]))
    recent = RecentFiles(store)
    assert recent.paths == ["/ok/a.ora"]
    with pytest.raises(files.OpenError, match="not a valid file name"):
        files.open_document("bad\0name.ora")
    a, b = tmp_path / "a.ora", tmp_path / "b.ora"
    a.symlink_to(b)
    b.symlink_to(a)
    recent.add(a)
    assert recent.paths[0].endswith("a.ora")
