"""``impasto convert IN OUT``: convert between .ora, .psd and flattened .png/.jpg/.webp headless.

Layers travel where the target can hold them (.ora, .psd); flattened targets get the picture and
the A1111 ``parameters`` of the topmost visible result layer. Any image Impasto opens is accepted
as input. Exit status: 0 done, 2 bad arguments or a file that cannot be read or written (one line
on stderr).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line instead of usage + error
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
    return parser


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as err:
        print(f"impasto convert: {err} (usage: impasto convert IN OUT)", file=sys.stderr)
        return EXIT_BAD_INPUT
    from app.files import FileError, chosen_result, export_flat, open_document, save_any
    from app.image_io import EXPORT_FORMATS

    if args.output.exists() and not args.force:
        print(f"impasto convert: {args.output} exists; add --force to overwrite", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.input.resolve() == args.output.resolve():
        print("impasto convert: input and output are the same file", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        doc = open_document(args.input)
        carried = _image_parameters(args.input)
        if carried and args.output.suffix.lower() in EXPORT_FORMATS and not chosen_result(doc):
            export_flat(doc, args.output, carried)  # a PNG's A1111 text goes to the JPEG's EXIF
        else:
            save_any(doc, args.output)
    except FileError as err:
        print(f"impasto convert: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{args.input} -> {args.output} ({doc.width}x{doc.height}, {len(doc.layers)} layers)")
    return EXIT_OK


def _image_parameters(path: Path) -> str | None:
    """The A1111 ``parameters`` of a flat PNG/JPEG/WebP input (None for projects and plain
    images, or when it cannot be read: the conversion goes on without it)."""
    if path.suffix.lower() not in {".png", ".jpg", ".jpeg", ".webp"}:
        return None
    from inference.parameters import read_image_parameters

    try:
        return read_image_parameters(path)
    except (OSError, ValueError, SyntaxError) as err:
        log.info("no parameters read from %s: %s", path, err)
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
