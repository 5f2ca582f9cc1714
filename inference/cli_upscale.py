"""``impasto upscale``: upscale an image (Lanczos or a super-resolution model), optionally refined.

``impasto upscale IN --out OUT [--scale 2] [--upscaler PATH]`` upscales; adding ``--model M``
refines the result in overlapping tiles (img2img at ``--strength``, ``--prompt``, ``--lora``...,
see inference/tiled_refine.py). Bad input exits with code 2 and one line; the output PNG is
written atomically and carries the recipe (A1111 text, with the upscale settings). An image
with transparency keeps it (its alpha is resized with Lanczos).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from inference.api import (
    Cancelled,
    CancelToken,
    EngineError,
    InvalidRequestError,
    Mode,
    ModelLoadError,
    ModelNotFoundError,
    Request,
    Sampler,
    UpscaleSpec,
)
from inference.cli_generate import (
    BadInput,
    _check_outputs,
    _Parser,
    _Progress,
    _read_image,
    _refuse_pickles,
    choose_seed,
    loras_of,
    write_outputs,
)
from inference.limits import DEFAULT_PIXEL_LIMIT

PROG = "impasto upscale"
EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Upscale an image by Lanczos or a super-resolution model; with --model, "
        "refine it tile by tile with a diffusion model.",
    )
    p.add_argument("image", metavar="IN", help="the image to upscale")
    p.add_argument("--out", required=True, help="output PNG path")
    p.add_argument("--scale", type=float, default=2.0, help="upscale factor, 1..8 (default 2)")
    p.add_argument(
        "--upscaler",
        help="super-resolution model (.safetensors; .pth with --allow-pickle); default Lanczos",
    )
    p.add_argument("--model", help="diffusion model to refine with (diffusers folder or file)")
    p.add_argument("--prompt", default="", help="what the refined picture shows")
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--strength", type=float, default=0.3, help="refine strength (0-1]")
    p.add_argument("--tile", type=int, default=512, help="refine tile size in pixels")
    p.add_argument("--overlap", type=int, default=64, help="refine tile overlap in pixels")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=7.0, help="guidance scale")
    p.add_argument("--seed", type=int, default=None, help="default (or -1): random")
    p.add_argument("--sampler", default=Sampler.EULER_A.value)
    p.add_argument("--lora", action="append", default=[], metavar="PATH[:WEIGHT]")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--allow-pickle", action="store_true", help="allow .pth/.ckpt (weights only)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def build_request(args: argparse.Namespace) -> Request:
    """Parsed arguments -> an upscale Request (raises BadInput / InvalidRequestError)."""
    from inference.tiled_refine import validate_upscale

    for name in ("scale", "strength", "cfg"):
        if not math.isfinite(getattr(args, name)):
            raise BadInput(f"--{name} must be a finite number")
    refine = args.model is not None
    if not refine:
        for flag, value in (("--prompt", args.prompt), ("--lora", args.lora)):
            if value:
                raise BadInput(f"{flag} needs --model (it is used to refine the upscaled image)")
    if args.model is not None and not Path(args.model).expanduser().exists():
        raise BadInput(f"model not found: {args.model}")
    if args.upscaler is not None:
        upscaler = Path(args.upscaler).expanduser()
        if not upscaler.is_file():
            raise BadInput(f"upscaler not found: {args.upscaler}")
        _refuse_pickles([str(upscaler)], args.allow_pickle)
    if args.seed is not None and not -1 <= args.seed < 2**32:
        raise BadInput(f"--seed must be 0..{2**32 - 1} (or -1 for random), not {args.seed}")
    loras = loras_of(args)
    image = _read_image(args.image, "image")
    seed = choose_seed(args.seed)
    request = Request(
        mode=Mode.IMG2IMG,
        prompt=args.prompt,
        negative_prompt=args.negative,
        seed=seed,
        steps=args.steps,
        guidance=args.cfg,
        strength=args.strength,
        sampler=Sampler.parse(args.sampler),
        model_path=args.model,
        image=image,
        loras=loras,
        upscale=UpscaleSpec(
            scale=args.scale,
            upscaler_path=args.upscaler,
            refine=refine,
            tile=args.tile,
            overlap=args.overlap,
            pixel_limit=DEFAULT_PIXEL_LIMIT,
        ),
    )
    validate_upscale(request)
    return request


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        out = Path(args.out).expanduser()
        _check_outputs(out, None)
        request = build_request(args)
        from inference.engine import validate_request

        validate_request(request)
    except (BadInput, InvalidRequestError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _upscale(args, request, out)


def _upscale(args: argparse.Namespace, request: Request, out: Path) -> int:
    from inference.api import EngineSettings
    from inference.engine import Engine
    from inference.parameters import format_parameters
    from inference.quiet import quiet_libraries

    quiet_libraries()
    engine = Engine(EngineSettings(device=args.device, allow_pickle=args.allow_pickle))
    progress = _Progress(args.quiet, None)
    try:
        result = engine.run(request, progress, CancelToken())
    except (InvalidRequestError, ModelNotFoundError, ModelLoadError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (Cancelled, KeyboardInterrupt):
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except EngineError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    finally:
        progress.close_line()
        if request.model_path is not None or args.upscaler is not None:
            engine.close()  # frees device memory; Lanczos holds none (and needs no torch)
    variant = result.variants[0]
    image = _with_alpha(variant.image, request.image)
    return write_outputs(out, [(image, format_parameters(result.recipe), variant.seed)])


def _with_alpha(picture: np.ndarray, source: np.ndarray | None) -> np.ndarray:
    """The upscaled picture (RGBA, opaque) with the source's alpha channel resized to it, or as
    RGB when the source has none."""
    if source is None or source.ndim != 3 or source.shape[2] != 4:
        return np.ascontiguousarray(picture[..., :3])
    from inference.upscale import lanczos

    height, width = picture.shape[:2]
    picture[..., 3] = lanczos(source[..., 3], width, height)
    return picture
