"""``inference.atomic_write``: the one atomic writer of inference/ (and ``safe_json``'s reader)."""

from __future__ import annotations

import errno
import os

import pytest

from inference import safe_json
from inference.atomic_write import check_writable_target, current_umask, write_atomic


def test_new_files_get_0666_less_the_umask_and_old_files_keep_their_mode(tmp_path):
    old = os.umask(0o022)
    try:
        assert current_umask() == 0o022
        path = write_atomic(tmp_path / "a.bin", b"one")
        assert path.stat().st_mode & 0o777 == 0o644
        os.chmod(path, 0o600)
        write_atomic(path, b"two")
        assert path.read_bytes() == b"two" and path.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_writing_through_a_symlink_updates_its_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert write_atomic(link, b"new") == target
    assert link.is_symlink() and target.read_text() == "new"


def test_a_failed_write_names_the_target_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    path.write_bytes(b"keep")

    def fail(handle):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as info:
        write_atomic(path, fail)
    assert info.value.filename == str(path) and info.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"keep"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_unwritable_targets_are_named_before_writing(tmp_path):
    with pytest.raises(IsADirectoryError):
        check_writable_target(tmp_path)
    with pytest.raises(OSError, match="too long"):
        check_writable_target(tmp_path / ("x" * 300))
    with pytest.raises(FileNotFoundError):
        check_writable_target(tmp_path / "missing" / "x.png")
    assert check_writable_target(tmp_path / "fine.png") == tmp_path / "fine.png"


def test_read_capped_does_not_trust_st_size(tmp_path):
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 2000)
    assert len(safe_json.read_capped(path, 2000)) == 2000
    with pytest.raises(safe_json.JSONError, match="larger than"):
        safe_json.read_capped(path, 1999)
    with pytest.raises(safe_json.JSONError, match="not a regular file"):
        safe_json.read_capped("/dev/zero", 10)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[" * 10_000, "nested"),
        (b'{"a": "' + b"[" * 10_000 + b'"}', None),  # brackets in a string are text
        (b"[" + b"7" * 100 + b"]", "digits"),
        (b"\xff", "UTF-8"),
    ],
)
def test_bounded_json(raw, message):
    if message is None:
        assert safe_json.loads(raw) == {"a": "[" * 10_000}
    else:
        with pytest.raises(safe_json.JSONError, match=message):
            safe_json.loads(raw)
