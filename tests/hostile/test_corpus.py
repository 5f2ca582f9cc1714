"""Every hostile case, through ``impasto convert`` (a subprocess per case) and through the
window's open/save path (app.files): exit 0 or 2, no traceback, exactly one stderr line for a
refusal, under a 3 GB address-space cap; what opens saves to a project that opens again with
equal layers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import files
from tests.hostile.corpus import ALL_CASES, Case, unreadable_case

REPO = Path(__file__).resolve().parents[2]
MEMORY_CAP = 3 << 30
TIMEOUT = 120  # a FIFO or a loop must not hang; generous for a loaded machine

CASES = list(ALL_CASES)
if os.name == "posix" and os.geteuid() != 0:
    CASES.append(unreadable_case())


def _capped() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"},
        capture_output=True,
        timeout=TIMEOUT,
        preexec_fn=_capped if os.name == "posix" else None,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_convert(case: Case, tmp_path):
    source = case.build(tmp_path)
    output = tmp_path / case.output
    run = _run(["-m", "app.main", "convert", str(source), str(output)], tmp_path)
    stderr = run.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr and "unexpected error" not in stderr, stderr
    lines = stderr.splitlines()
    if case.expect == "ok":
        assert run.returncode == 0, stderr
        assert lines == [], stderr  # a success is silent on stderr
        assert output.exists()
        if output.suffix in (".ora", ".psd"):
            files.open_document(output)  # what convert wrote opens
    else:
        assert run.returncode == 2, (run.returncode, stderr)
        assert len(lines) == 1 and lines[0].startswith("impasto convert: "), stderr
        assert case.says in lines[0], lines[0]
        assert len(lines[0]) < 400
        assert not os.path.lexists(output)


def test_window_open_and_save(tmp_path):
    """The window's path, all cases in one capped worker process."""
    cases = [case for case in CASES if case.window]
    inputs = []
    for index, case in enumerate(cases):
        folder = tmp_path / f"case{index}"
        folder.mkdir()
        inputs.append(str(case.build(folder)))
    run = _run(["-m", "tests.hostile.run_window_path", str(tmp_path), *inputs], REPO)
    results = [json.loads(line) for line in run.stdout.decode().splitlines()]
    assert run.returncode == 0 and len(results) == len(cases), run.stderr.decode()[-3000:]
    for case, result in zip(cases, results, strict=True):
        where = f"{case.name}: {result}"
        assert result["outcome"] == ("ok" if case.expect == "ok" else "refused"), where
        if result["outcome"] == "ok":
            assert result["difference"] is None, where
        else:
            message = result["message"]
            assert "\n" not in message and message and case.says in message, where
