"""``impasto pose``: render pose JSON to PNG headless, with one-line errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference.cli_pose import main
from inference.openpose import Person, Pose, load_pose, save_pose
from inference.openpose_render import render_pose

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pose_file(tmp_path: Path) -> tuple[Path, Pose]:
    pose = Pose(160, 240, (Person.standing(10, 10, 140, 220),))
    path = tmp_path / "pose.json"
    save_pose(path, pose)
    return path, pose


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "RGB"
        return np.asarray(image)


def test_render_writes_the_control_image(pose_file, tmp_path, capsys):
    path, pose = pose_file
    out = tmp_path / "pose.png"
    assert main(["render", str(path), "--out", str(out)]) == 0
    np.testing.assert_array_equal(_png(out), render_pose(pose))
    assert "160x240" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pose.json", "pose.png"]


def test_render_at_another_size(pose_file, tmp_path):
    path, pose = pose_file
    out = tmp_path / "big.png"
    assert main(["render", str(path), "--out", str(out), "--width", "320", "--height", "400"]) == 0
    np.testing.assert_array_equal(_png(out), render_pose(pose, 320, 400))
    assert main(["render", str(path), "--out", str(out), "--width", "320"]) == 0
    assert _png(out).shape == (480, 320, 3)  # height follows the canvas aspect


def test_render_json_without_canvas_takes_width_and_height(tmp_path):
    path = tmp_path / "openpose.json"
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": [0.5, 0.5, 1] * 18}]}))
    out = tmp_path / "out.png"
    assert main(["render", str(path), "--out", str(out)]) == 2
    assert not out.exists()
    assert main(["render", str(path), "--out", str(out), "--width", "64", "--height", "32"]) == 0
    image = _png(out)
    assert image.shape == (32, 64, 3) and tuple(image[16, 32]) == (255, 0, 85)  # last joint drawn


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ('{"people": [', [], "malformed JSON"),
        (
            '{"people": [{"pose_keypoints_2d": [1, 2]}], "canvas_width": 9, "canvas_height": 9}',
            [],
            "has 2 numbers; expected 54",
        ),
        (None, [], "cannot read pose file"),
        ("{}", ["--width", "0", "--height", "5"], "--width must be within"),
        ("{}", ["--width", "abc"], "invalid int value"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path, capsys, content, extra, message
):
    path = tmp_path / "pose.json"
    if content is not None:
        path.write_text(content)
    out = tmp_path / "pose.png"
    assert main(["render", str(path), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not out.exists()


def test_failed_render_leaves_an_existing_output_alone(pose_file, tmp_path):
    path, _ = pose_file
    out = tmp_path / "keep.png"
    out.write_bytes(b"precious")
    path.write_text('{"people": "nope", "canvas_width": 5, "canvas_height": 5}')
    assert main(["render", str(path), "--out", str(out)]) == 2
    assert out.read_bytes() == b"precious"


def test_usage_errors_are_one_line(pose_file, tmp_path, capsys):
    path, _ = pose_file
    assert main(["render", str(path)]) == 2
    assert main(["render", str(path), "--out", str(tmp_path / "x.jpg")]) == 2
    assert main(["explode"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    assert "--out" in lines[0] and ".png" in lines[1] and "invalid choice" in lines[2]


def test_new_writes_default_figures(tmp_path):
    out = tmp_path / "two.json"
    assert (
        main(["new", "--out", str(out), "--width", "512", "--height", "384", "--people", "2"]) == 0
    )
    pose = load_pose(out)
    assert (pose.width, pose.height, len(pose.people)) == (512, 384, 2)
    assert pose.people[0].center[0] < 256 < pose.people[1].center[0]


def test_impasto_entry_point_dispatches_pose(pose_file, tmp_path):
    path, pose = pose_file
    out = tmp_path / "cli.png"
    done = subprocess.run(
        [sys.executable, "-m", "app.main", "pose", "render", str(path), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(_png(out), render_pose(pose))
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.main",
            "pose",
            "render",
            str(tmp_path / "no.json"),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0


def test_outputs_respect_the_umask_and_errors_name_the_real_target(pose_file, tmp_path):
    path, _pose = pose_file
    out = tmp_path / "out.png"
    code = (
        "import os, sys; os.umask(0o027); from app.main import main; sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "pose", "render", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_mode & 0o777 == 0o640


def test_a_failed_write_names_the_output_not_the_temp_file(
    pose_file, tmp_path, monkeypatch, capsys
):
    import errno

    path, _pose = pose_file
    out = tmp_path / "out.png"

    def disk_full(src, dst, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(src))

    monkeypatch.setattr("os.replace", disk_full)
    assert main(["render", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"impasto pose: error: cannot write {out}: No space left on device"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pose.json"]  # temp file removed


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("[" * 100_000, [], "nested 100000 levels deep"),
        ('{"canvas_width": ' + "1" * 5000 + ', "canvas_height": 9, "people": []}', [], "digits"),
        ('{"canvas_width": 65536, "canvas_height": 65536, "people": []}', [], "MP limit"),
        ('{"canvas_width": 1, "canvas_height": 65536, "people": []}', ["--width", "65536"], "MP"),
    ],
)
def test_hostile_pose_files_are_one_line(tmp_path, capsys, content, extra, message):
    path = tmp_path / "p.json"
    path.write_text(content)
    assert main(["render", str(path), "--out", str(tmp_path / "o.png"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "folder"])
def test_non_regular_pose_inputs_are_refused_without_reading(tmp_path, capsys, source):
    import os

    target = {"/dev/zero": Path("/dev/zero"), "fifo": tmp_path / "f", "folder": tmp_path}[source]
    if source == "fifo":
        os.mkfifo(target)
    assert main(["render", str(target), "--out", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "not a regular file" in err or "folder" in err


def test_min_confidence_option_draws_low_confidence_points(tmp_path):
    values = []
    for p in Person.standing(10, 10, 140, 220).body:
        values += [p.x, p.y, 0.5]
    path = tmp_path / "p.json"
    doc = {"people": [{"pose_keypoints_2d": values}], "canvas_width": 160, "canvas_height": 240}
    path.write_text(json.dumps(doc))
    hidden, shown = tmp_path / "hidden.png", tmp_path / "shown.png"
    assert main(["render", str(path), "--out", str(hidden)]) == 0
    assert main(["render", str(path), "--out", str(shown), "--min-confidence", "0.3"]) == 0
    assert not _png(hidden).any()  # ControlNet's convention: confidence below 1 is not drawn
    assert _png(shown).any()
