"""Every hostile case through the real CLI, as a separate process under a 3 GB memory cap.

The promise: exit 0 or 2, never a traceback, and at most one line on stderr (exactly one when
the command fails), within a time limit. The files come from ``generators.py``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile_cli.generators import Case, build_corpus, cases

ROOT = Path(__file__).resolve().parents[2]
MEMORY_CAP = 3 * 1024**3
TIMEOUT_S = 240


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("hostile"))


def run_cli(argv: list[str], cwd: Path, env: dict[str, str] | None = None):
    environment = dict(os.environ if env is None else env)
    environment.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    environment.pop("IMPASTO_VERBOSE", None)
    return subprocess.run(
        [sys.executable, "-m", "app.main", *argv],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        preexec_fn=_cap_memory,
    )


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_hostile_case_ends_with_one_clear_line(case: Case, corpus: Path, tmp_path, monkeypatch):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    result = run_cli(case.argv(corpus), cwd=tmp_path, env=env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode in case.exit_codes, result.stderr
    assert "Traceback" not in result.stderr
    if result.returncode == 0:
        assert lines == [], result.stderr
    else:
        assert len(lines) == 1, result.stderr
        assert case.stderr_has.format(d=corpus) in lines[0]
    for text in case.stdout_has:
        assert text in result.stdout, result.stdout


def test_every_generated_case_has_a_unique_name():
    names = [c.name for c in cases()]
    assert len(names) == len(set(names))
