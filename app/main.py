"""Entry point of the ``impasto`` command: headless sub-commands, or the desktop app.

Sub-commands are dispatched before anything heavy is imported, so ``impasto`` opens its window
without loading torch, and ``impasto generate`` never loads Qt widgets. ``--verbose`` (anywhere)
shows log messages and the ML libraries' own chatter, which is silenced by default.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings

from inference.quiet import quiet_libraries, set_verbose

# sub-command -> module with ``main(argv: list[str]) -> int``
SUBCOMMANDS: dict[str, str] = {
    "generate": "inference.cli_generate",
    "pose": "inference.cli_pose",
    "models": "inference.cli_models",
    "convert": "app.cli_convert",
    "serve": "inference.serve.cli",
    "upscale": "inference.cli_upscale",
}
VERBOSE_FLAGS = {"--verbose"}
EXIT_NO_DISPLAY = 2
EXIT_INTERNAL_ERROR = 1


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in VERBOSE_FLAGS for a in args)
    args = [a for a in args if a not in VERBOSE_FLAGS]
    set_verbose(verbose)
    quiet_libraries(verbose)  # before anything imports diffusers/transformers
    headless = bool(args) and args[0] in SUBCOMMANDS
    # a failing command prints one line itself; log records are for --verbose
    quiet_level = logging.ERROR if headless else logging.WARNING
    logging.basicConfig(
        level=logging.INFO if verbose else quiet_level,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if headless:
        if not verbose:  # a command's failure is its one line; Python warnings are noise here
            warnings.simplefilter("ignore")
        module = importlib.import_module(SUBCOMMANDS[args[0]])
        try:
            return int(module.main(args[1:]) or 0)
        except Exception as error:  # a bug, not bad input (commands say that themselves)
            if verbose:
                raise
            print(
                f"impasto {args[0]}: internal error: {type(error).__name__}: {error} "
                "(run again with --verbose for the traceback)",
                file=sys.stderr,
            )
            return EXIT_INTERNAL_ERROR
    if args and args[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    problem = missing_display()
    if problem is not None:
        print(f"impasto: {problem}", file=sys.stderr)
        return EXIT_NO_DISPLAY
    return _run_gui(args)


def missing_display(
    environ: dict[str, str] | None = None, platform: str | None = None
) -> str | None:
    """Why the window cannot open here, or None. Qt itself aborts (rc 134) with a misleading
    "libxcb-cursor0 is needed" when a Linux session has no display at all."""
    environ = dict(os.environ if environ is None else environ)
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return None
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return (
        "no display found (neither DISPLAY nor WAYLAND_DISPLAY is set): run it in a desktop "
        "session, or use the headless commands (impasto generate|pose|models|convert|upscale)"
    )


def _run_gui(args: list[str]) -> int:
    from widgets.app_window import run_gui  # start-up wiring may import widgets

    return run_gui(args)


def _usage() -> str:
    names = " | ".join(SUBCOMMANDS)
    return (
        "usage: impasto [--verbose] [IMAGE_OR_PROJECT]      open the editor\n"
        f"       impasto [--verbose] {{{names}}} ...   headless tools (use --help on each)"
    )


if __name__ == "__main__":
    sys.exit(main())
