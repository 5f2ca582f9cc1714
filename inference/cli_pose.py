"""``impasto pose``: render OpenPose JSON to ControlNet control images, headless.

    impasto pose render POSE.json --out POSE.png [--width W --height H] [--min-confidence C]
    impasto pose new --out POSE.json --width W --height H [--people N]

Bad input exits with status 2 and one line on stderr; nothing is written then.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
from pathlib import Path

from inference.api import InvalidRequestError
from inference.atomic_write import check_writable_target, write_atomic
from inference.openpose import (
    MAX_CANVAS_SIDE,
    Person,
    Pose,
    check_canvas_pixels,
    load_pose,
    save_pose,
)
from inference.openpose_render import render_pose

log = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2
EXIT_WRITE_FAILED = 2  # like bad input: one line, nothing half-written


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="impasto pose", description="OpenPose control images.")
    commands = parser.add_subparsers(dest="command", metavar="{render,new}", parser_class=_Parser)

    render = commands.add_parser(
        "render", help="draw a pose JSON as ControlNet's OpenPose annotator does"
    )
    render.add_argument("pose", type=Path, help="OpenPose JSON file")
    render.add_argument("--out", type=Path, required=True, help="PNG file to write")
    render.add_argument("--width", type=int, help="output width (default: the pose canvas)")
    render.add_argument("--height", type=int, help="output height (default: the pose canvas)")
    render.add_argument("--no-hands", action="store_true", help="leave hands out")
    render.add_argument("--no-face", action="store_true", help="leave the face out")
    render.add_argument(
        "--min-confidence",
        type=float,
        default=None,
        metavar="C",
        help="draw points whose confidence is at least C (0..1); default: the file's "
        "convention (1.0 for ControlNet JSON with a canvas size, as sd-webui-controlnet; "
        "above 0 for OpenPose's own output)",
    )

    new = commands.add_parser("new", help="write a pose JSON with default standing figures")
    new.add_argument("--out", type=Path, required=True, help="JSON file to write")
    new.add_argument("--width", type=int, required=True)
    new.add_argument("--height", type=int, required=True)
    new.add_argument("--people", type=int, default=1, help="figures side by side (default 1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in {"-h", "--help"}:
        parser.print_help()
        return 0
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise _UsageError("choose a command: render or new")
        if args.command == "render":
            return _render(args)
        return _new(args)
    except (_UsageError, InvalidRequestError) as err:
        print(f"impasto pose: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:
        target = getattr(err, "filename", None) or args_out(argv)
        print(f"impasto pose: error: cannot write {target}: {err.strerror or err}", file=sys.stderr)
        return EXIT_WRITE_FAILED


def args_out(argv: list[str]) -> str:
    """The ``--out`` value, for an error that did not name its file."""
    for i, arg in enumerate(argv):
        if arg == "--out" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--out="):
            return arg.removeprefix("--out=")
    return "the output"


def _check_size(name: str, value: int | None) -> None:
    if value is not None and not 0 < value <= MAX_CANVAS_SIDE:
        raise _UsageError(f"--{name} must be within 1..{MAX_CANVAS_SIDE}, not {value}")


def _render(args: argparse.Namespace) -> int:
    _check_size("width", args.width)
    _check_size("height", args.height)
    check_writable_target(args.out)
    if args.out.suffix.lower() != ".png":
        raise _UsageError(
            f"--out must be a .png file (control images must be lossless): {args.out}"
        )
    canvas = (args.width, args.height) if args.width and args.height else None
    pose = load_pose(args.pose, canvas_size=canvas, min_confidence=args.min_confidence)
    width, height = _output_size(pose, args.width, args.height)
    check_canvas_pixels(width, height)
    image = render_pose(pose, width, height, hands=not args.no_hands, face=not args.no_face)

    from PIL import Image  # Pillow only where an image is written

    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format="PNG")
    write_atomic(args.out, buffer.getvalue())
    people = len(pose.people)
    print(f"wrote {args.out} ({width}x{height}, {people} {'person' if people == 1 else 'people'})")
    return 0


def _output_size(pose: Pose, width: int | None, height: int | None) -> tuple[int, int]:
    """Both given: that size. One given: the other follows the pose canvas's aspect."""
    if width and height:
        return width, height
    if width:
        return width, max(1, round(width * pose.height / pose.width))
    if height:
        return max(1, round(height * pose.width / pose.height)), height
    return pose.width, pose.height


def _new(args: argparse.Namespace) -> int:
    _check_size("width", args.width)
    _check_size("height", args.height)
    check_canvas_pixels(args.width, args.height)
    check_writable_target(args.out)
    if not 1 <= args.people <= 16:
        raise _UsageError(f"--people must be within 1..16, not {args.people}")
    slot = args.width / args.people
    margin = 0.05 * args.height
    people = tuple(
        Person.standing(i * slot, margin, slot, args.height - 2 * margin)
        for i in range(args.people)
    )
    save_pose(args.out, Pose(args.width, args.height, people))
    print(f"wrote {args.out} ({args.width}x{args.height}, {args.people} standing)")
    return 0
