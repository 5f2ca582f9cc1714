"""``impasto models``: list the models the library finds, and why others are not picked up."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from inference.library import (
    LibraryCache,
    ModelEntry,
    ScanProgress,
    configured_folders,
    default_cache_path,
    default_folders,
    fill_hashes,
    scan_folders,
)


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage, so an error stays one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="impasto models",
        description=(
            "List the Stable Diffusion models found in FOLDERs (default: the Hugging Face cache "
            "and the folders set in Impasto's settings), with kind, base, inpainting and hash."
        ),
    )
    parser.add_argument("folders", nargs="*", metavar="FOLDER", help="folders or files to scan")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--hash", action="store_true", help="compute missing hashes (reads every file once)"
    )
    parser.add_argument("--cache", type=Path, help="hash cache file (default: user cache dir)")
    parser.add_argument("--settings", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except _UsageError as error:
        print(f"impasto models: error: {error}", file=sys.stderr)
        return 2
    if args.folders:
        folders = [Path(f) for f in args.folders]
        extra: list[Path] = []
    else:
        user_folders, include_hf, extra = configured_folders(args.settings)
        folders = default_folders(user_folders, include_hf_cache=include_hf)
    cache = LibraryCache(args.cache or default_cache_path())
    entries = list(scan_folders(folders, extra_files=extra, cache=cache).entries)
    if args.hash:
        entries = fill_hashes(entries, cache=cache, progress=_hash_progress())
        if sys.stderr.isatty():
            print(file=sys.stderr)
    if args.json:
        print(json.dumps([_as_json(e) for e in entries], indent=2))
    else:
        _print_table(entries, folders)
    missing = [str(f) for f in folders if args.folders and not f.exists()]
    if missing:
        print(f"impasto models: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    return 0


def _hash_progress() -> Callable[[ScanProgress], None] | None:
    if not sys.stderr.isatty():
        return None

    def report(progress: ScanProgress) -> None:
        percent = 100 * progress.done // max(progress.total or 1, 1)
        print(
            f"\rhashing {percent:3d}%  {Path(progress.current).name[:50]:50}",
            end="",
            file=sys.stderr,
        )

    return report


def _as_json(entry: ModelEntry) -> dict:
    return {
        "path": entry.path,
        "name": entry.display_name,
        "kind": entry.kind.value,
        "base": entry.base.value,
        "inpaint": entry.inpaint,
        "format": entry.format.value,
        "size": entry.size,
        "hash": entry.hash,
        "sha256": entry.sha256,
        "problem": entry.problem,
    }


def _print_table(entries: list[ModelEntry], folders: list[Path]) -> None:
    if not entries:
        where = ", ".join(str(f) for f in folders) or "no folders (add some in Settings)"
        print(f"No models found in {where}.")
        return
    rows = [
        (
            e.kind.value,
            e.base.value if e.base.value != "unknown" else "-",
            "yes" if e.inpaint else "",
            e.size_text if e.size else "",
            e.hash or "",
            e.path + (f"  ({e.format.value})" if e.format.value == "pickle" else ""),
        )
        for e in entries
    ]
    header = ("KIND", "BASE", "INPAINT", "SIZE", "HASH", "PATH")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for row, entry in zip([header, *rows], [None, *entries], strict=True):
        line = "  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True))
        print(f"{line}  {row[5]}")
        if entry is not None and entry.problem:
            print(f"{'':{sum(widths) + 10}}  ! {entry.problem}")
    usable = sum(e.usable for e in entries)
    print(f"\n{len(entries)} entries, {usable} usable.")
