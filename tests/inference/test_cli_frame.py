"""``impasto generate --frame``: outpaint past the image (classic engine and a tiny model), and
the bad frames refused in one line with exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference.cli_generate import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def image(tmp_path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    path = tmp_path / "in.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


def test_frame_past_the_left_edge_grows_the_image_with_the_classic_engine(image, tmp_path):
    path, pixels = image
    out = tmp_path / "out.png"
    code = main(
        ["--prompt", "x", "--image", str(path), "--out", str(out), "--frame", "-64,0,128,64",
         "--seed", "3", "--mask-blur", "2", "--quiet"]
    )  # fmt: skip
    assert code == 0
    grown = np.asarray(Image.open(out))
    assert grown.shape == (64, 160, 3)
    # original pixels farther than the seam (16) and the feather (4) from the new area
    np.testing.assert_array_equal(grown[:, 64 + 20 :], pixels[:, 20:])
    assert grown[:, :64].std() > 0  # something was painted there


def test_frame_past_a_corner_leaves_the_uncovered_corner_transparent(image, tmp_path):
    path, pixels = image
    out = tmp_path / "out.png"
    assert main(["--prompt", "x", "--image", str(path), "--out", str(out), "--frame=64,32,64,64",
                 "--quiet"]) == 0  # fmt: skip
    grown = np.asarray(Image.open(out))
    assert grown.shape == (96, 128, 4)
    assert grown[90, 5, 3] == 0 and grown[10, 120, 3] == 0  # neither image nor frame
    np.testing.assert_array_equal(grown[:32, :64, :3], pixels[:32, :64])


def test_frame_with_a_tiny_model(image, tmp_path, tiny_single_file):
    path, pixels = image
    out = tmp_path / "out.png"
    code = main(
        ["--prompt", "x", "--image", str(path), "--out", str(out), "--frame", "32,0,128,64",
         "--model", str(tiny_single_file), "--steps", "2", "--seed", "1", "--mask-blur", "2",
         "--device", "cpu", "--quiet"]
    )  # fmt: skip
    assert code == 0
    grown = np.asarray(Image.open(out))
    assert grown.shape == (64, 160, 3)
    np.testing.assert_array_equal(grown[:, : 96 - 20], pixels[:, : 96 - 20])


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        ("0,0,0,64", "has no area"),
        ("0,0,64,-8", "has no area"),
        ("0,0,64", "X,Y,W,H"),
        ("a,0,64,64", "X,Y,W,H"),
        ("30000,30000,64,64", "MP limit"),
        ("0,0,9000,64", "at most 8192"),
        ("8,8,32,32", "give --mask too"),  # inside the image, no model, no mask
    ],
)
def test_bad_frames_are_one_line_and_exit_2(image, tmp_path, frame, words):
    path, _ = image
    out = tmp_path / "out.png"
    result = subprocess.run(
        [sys.executable, "-m", "app.main", "generate", "--prompt", "x", "--image", str(path),
         "--out", str(out), "--frame", frame],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr
    assert not out.exists()


def test_frame_needs_an_image(tmp_path, capsys):
    assert main(["--prompt", "x", "--out", str(tmp_path / "o.png"), "--frame", "0,0,64,64"]) == 2
    assert "--frame needs --image" in capsys.readouterr().err
