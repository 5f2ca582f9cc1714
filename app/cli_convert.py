"""``impasto convert IN OUT``: convert between .ora, .psd and flattened .png/.jpg/.webp headless.

Layers travel where the target can hold them (.ora, .psd); flattened targets get the picture and
the A1111 ``parameters`` of the topmost visible result layer. Any image Impasto opens is accepted
as input. Exit status: 0 done, 2 bad arguments or a file that cannot be read or written (one line
on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import numpy as np

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one clear line instead of usage + error
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="impasto convert",
        description="Convert between .ora, .psd and flattened .png/.jpg/.webp "
        "(layered where the target can hold layers).",
    )
    parser.add_argument("input", type=Path, help="an .ora, .psd or image file")
    parser.add_argument(
        "output", type=Path, help="the file to write (.ora, .psd, .png, .jpg, .webp)"
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite OUTPUT if it exists (default: refuse)"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show log messages and warnings"
    )
    return parser


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as err:
        print(f"impasto convert: {err} (usage: impasto convert IN OUT)", file=sys.stderr)
        return EXIT_BAD_INPUT
    from inference.quiet import is_verbose  # `impasto --verbose convert ...` sets it

    with _quiet(args.verbose or is_verbose()):
        try:
            return _convert(args.input, args.output, args.force)
        except _Refused as err:
            print(f"impasto convert: {_one_line(str(err))}", file=sys.stderr)
        except MemoryError:
            print("impasto convert: not enough memory for this file", file=sys.stderr)
        except Exception as err:  # a bug: still one line, the details in the log with -v
            log.debug("convert failed", exc_info=True)
            message = _one_line(f"unexpected error: {type(err).__name__}: {err}")
            print(f"impasto convert: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT


class _Refused(Exception):
    """One line for stderr."""


def _convert(source: Path, target: Path, force: bool) -> int:
    from app.files import FileError, open_document, save_any

    try:
        exists = os.path.lexists(target)
        if exists and not force:
            raise _Refused(f"{_short(target)} exists; add --force to overwrite")
        if exists and os.path.lexists(source) and _same_file(source, target):
            raise _Refused("input and output are the same file")
        doc = open_document(source)  # a picture's A1111 text comes along (layer extra)
        save_any(doc, target)
    except FileError as err:
        raise _Refused(str(err)) from None
    except OSError as err:
        raise _Refused(_describe_os_error(err)) from None
    print(f"{source} -> {target} ({doc.width}x{doc.height}, {len(doc.layers)} layers)")
    return EXIT_OK


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _describe_os_error(err: OSError) -> str:
    name = _short(Path(err.filename)) if err.filename else "the file"
    if err.errno == errno.ENAMETOOLONG:
        return f"{name}: the file name is too long"
    if err.errno == errno.ELOOP:
        return f"{name} is a symbolic link that loops"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"{name}: permission denied"
    return f"{name}: {err.strerror or err}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _short(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 80 else text[:40] + "…" + text[-20:]


@contextlib.contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
    """One line per failure: log records and library warnings stay off stderr unless -v."""
    if verbose:
        yield
        return
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
