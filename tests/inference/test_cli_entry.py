"""``impasto`` itself: the no-display line, ``--verbose`` and quiet model loading."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.main import missing_display

ROOT = Path(__file__).resolve().parents[2]


def test_no_display_is_one_line_and_exit_2_not_a_qt_abort():
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    env.pop("QT_QPA_PLATFORM", None)
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "app.main"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("impasto: no display found")


def test_missing_display_rules():
    assert missing_display({}, "linux") is not None
    assert missing_display({"DISPLAY": ":0"}, "linux") is None
    assert missing_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert missing_display({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert missing_display({}, "darwin") is None and missing_display({}, "win32") is None


def test_model_loading_is_quiet_by_default_and_verbose_shows_it(tmp_path, tiny_single_file):
    """A model load prints nothing on stderr by default (no library warnings, no log lines);
    ``--verbose`` shows what happened."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("IMPASTO_VERBOSE", None)
    args = [
        "generate", "--prompt", "x", "--out", str(tmp_path / "o.png"), "--model",
        str(tiny_single_file), "--steps", "1", "--width", "64", "--height", "64", "--quiet",
        "--device", "cpu",
    ]  # fmt: skip
    quiet = subprocess.run(
        [sys.executable, "-m", "app.main", *args], env=env, capture_output=True, text=True
    )
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    loud = subprocess.run(
        [sys.executable, "-m", "app.main", "--verbose", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    assert loud.returncode == 0, loud.stderr
    assert "loaded tiny-sd" in loud.stderr
