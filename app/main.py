"""Entry point of the ``impasto`` command: headless sub-commands, or the desktop app.

Sub-commands are dispatched before anything heavy is imported, so ``impasto`` opens its window
without loading torch, and ``impasto generate`` never loads Qt widgets.
"""

from __future__ import annotations

import importlib
import logging
import sys

# sub-command -> module with ``main(argv: list[str]) -> int``
SUBCOMMANDS: dict[str, str] = {
    "generate": "inference.cli_generate",
    "pose": "inference.cli_pose",
    "models": "inference.cli_models",
    "convert": "app.cli_convert",
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args and args[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[args[0]])
        return int(module.main(args[1:]) or 0)
    if args and args[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    return _run_gui(args)


def _run_gui(args: list[str]) -> int:
    from widgets.app_window import run_gui  # start-up wiring may import widgets

    return run_gui(args)


def _usage() -> str:
    names = " | ".join(SUBCOMMANDS)
    return (
        "usage: impasto [IMAGE_OR_PROJECT]      open the editor\n"
        f"       impasto {{{names}}} ...   headless tools (use --help on each)"
    )


if __name__ == "__main__":
    sys.exit(main())
