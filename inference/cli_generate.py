"""``impasto generate``: headless inpaint / img2img / txt2img from the terminal.

Inpaint with ``--image`` and ``--mask``, img2img with only ``--image``, txt2img with neither.
``--frame X,Y,W,H`` generates that area of the image; where it reaches past the image, the
image grows and the new area is outpainted (``inference.outpaint``).
Without ``--model`` the classic (OpenCV) engine inpaints. ``--lora PATH[:WEIGHT]`` (repeatable)
applies LoRAs, recorded A1111-style in the PNG's parameters. Bad input exits with code 2 and one
line. Without ``--model`` neither torch nor diffusers is imported.

A finished generation is never lost: when ``--out`` cannot be written (disk full, a read-only
folder), the result goes to a fallback folder (the user cache, else the temp folder) and the
error line says where.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from inference.api import (
    Box,
    Cancelled,
    CancelToken,
    ControlInput,
    EngineError,
    EngineProtocol,
    InvalidRequestError,
    Mode,
    ModelLoadError,
    ModelNotFoundError,
    ReferenceInput,
    Request,
    Sampler,
)
from inference.atomic_write import check_writable_target
from inference.limits import DEFAULT_PIXEL_LIMIT, MAX_MASK_BLUR
from inference.outpaint import FramedImage, FrameSpecError, parse_frame

PROG = "impasto generate"
EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """One line explaining what is wrong with the command line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise BadInput(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Generate or inpaint an image with a local model.")
    p.add_argument("--prompt", required=True, help="what to draw")
    p.add_argument("--out", required=True, help="output PNG path")
    p.add_argument("--image", help="source image (img2img, or inpaint with --mask)")
    p.add_argument("--mask", help="inpaint mask, white = regenerate (same size as --image)")
    p.add_argument("--model", help="diffusers folder or .safetensors; default: classic engine")
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=7.0, help="guidance scale")
    p.add_argument("--strength", type=float, default=0.75, help="denoising strength (0-1]")
    p.add_argument("--seed", type=int, default=None, help="default (or -1): random")
    p.add_argument(
        "--sampler", default=Sampler.EULER_A.value, help="; ".join(s.value for s in Sampler)
    )
    p.add_argument(
        "--batch", type=int, default=1, help="number of variants (seeds seed, seed+1...)"
    )
    p.add_argument("--width", type=int, default=512, help="txt2img width")
    p.add_argument("--height", type=int, default=512, help="txt2img height")
    p.add_argument("--padding", type=int, default=32, help="context around the mask (pixels)")
    p.add_argument(
        "--mask-blur",
        type=int,
        default=4,
        help=f"feather of the pasted mask (0..{MAX_MASK_BLUR} pixels)",
    )
    p.add_argument(
        "--frame",
        metavar="X,Y,W,H",
        help="generate this area of --image; past its edges the image grows (outpainting)",
    )
    p.add_argument("--model-size", type=int, default=None, help="generation resolution override")
    p.add_argument("--color-match", action="store_true", help="match colours to the surroundings")
    p.add_argument("--previews", help="folder for one preview PNG per step")
    p.add_argument("--control", action="append", default=[], help="ControlNet image (repeatable)")
    p.add_argument(
        "--controlnet", action="append", default=[], help="ControlNet model (repeatable)"
    )
    p.add_argument(
        "--control-weight",
        action="append",
        type=float,
        default=[],
        help="ControlNet weight (repeatable, default 1.0)",
    )
    p.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="PATH[:WEIGHT]",
        help="LoRA file (or diffusers LoRA folder) with an optional weight, default 1.0 "
        "(repeatable)",
    )
    p.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="IMAGE",
        help="reference image guiding the picture through an IP-Adapter (repeatable)",
    )
    p.add_argument(
        "--ip-adapter",
        action="append",
        default=[],
        metavar="PATH[:WEIGHT]",
        help="ip-adapter*.safetensors for the references (once, or once per --reference)",
    )
    p.add_argument(
        "--image-encoder",
        action="append",
        default=[],
        metavar="PATH",
        help="CLIP image encoder folder (default: image_encoder/ beside the IP-Adapter)",
    )
    p.add_argument(
        "--style-only",
        action="store_true",
        help="take only the references' style (InstantStyle: the style blocks only)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--allow-pickle", action="store_true", help="allow .ckpt (weights only)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--server",
        metavar="URL",
        help="run on an `impasto serve` server; --model, --lora, --controlnet name its models",
    )
    p.add_argument("--token-file", metavar="F", help="the server's token (default: its own file)")
    return p


def _open_image(path: str, what: str):
    """Decode ``path`` with EXIF orientation applied, refusing files above the pixel limit
    before their pixels are allocated. Returns a loaded PIL image."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    file = Path(path)
    if file.is_dir():
        raise BadInput(f"{what} {path} is a folder, not an image")
    if not file.exists():
        raise BadInput(f"{what} not found: {path}")
    if not file.is_file():
        raise BadInput(f"{what} {path} is not a regular file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit below
            with Image.open(file) as image:
                width, height = image.size
                if width * height > DEFAULT_PIXEL_LIMIT:
                    raise BadInput(
                        f"{what} {path} is {width}x{height} ({width * height / 1e6:.0f} MP), "
                        f"above the {DEFAULT_PIXEL_LIMIT / 1e6:.0f} MP limit"
                    )
                image.load()
                return ImageOps.exif_transpose(image)
    except BadInput:
        raise
    except Image.DecompressionBombError as error:
        raise BadInput(f"{what} {path} is too large to open safely ({error})") from None
    except UnidentifiedImageError:
        raise BadInput(f"cannot read {what} {path}: not an image format Pillow knows") from None
    except (OSError, SyntaxError, ValueError) as error:
        reason = getattr(error, "strerror", None) or error
        raise BadInput(f"cannot read {what} {path}: {reason}") from None


def _read_image(path: str, what: str) -> np.ndarray:
    image = _open_image(path, what)
    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return np.asarray(image.convert("RGBA" if transparent else "RGB")).copy()


def _read_mask(path: str) -> np.ndarray:
    gray = np.asarray(_open_image(path, "mask").convert("L"))
    return np.where(gray > 127, 255, 0).astype(np.uint8)


def _check_numbers(args: argparse.Namespace) -> None:
    """Ranges the engine does not check itself, refused before any file is read."""
    if not 0 <= args.mask_blur <= MAX_MASK_BLUR:
        raise BadInput(f"--mask-blur must be 0..{MAX_MASK_BLUR} pixels, not {args.mask_blur}")
    if not 0 <= args.padding <= 8192:
        raise BadInput(f"--padding must be 0..8192 pixels, not {args.padding}")
    if args.seed is not None and not -1 <= args.seed < 2**32:
        raise BadInput(f"--seed must be 0..{2**32 - 1} (or -1 for random), not {args.seed}")
    for name in ("cfg", "strength"):
        if not math.isfinite(getattr(args, name)):
            raise BadInput(f"--{name} must be a finite number")


def build_request(args: argparse.Namespace) -> Request:
    """Turn parsed arguments into a Request (raises BadInput / InvalidRequestError)."""
    return build_job(args)[0]


def build_job(args: argparse.Namespace) -> tuple[Request, FramedImage | None]:
    """The Request, and with ``--frame`` the framed image its results are placed into."""
    from inference import cropping

    frame = _parse_frame(args.frame)
    sampler = Sampler.parse(args.sampler)
    image = _read_image(args.image, "image") if args.image else None
    mask = _read_mask(args.mask) if args.mask else None
    if mask is not None and image is None:
        raise BadInput("--mask needs --image")
    if mask is not None and image is not None and mask.shape != image.shape[:2]:
        raise BadInput(
            f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
            f"{image.shape[1]}x{image.shape[0]}"
        )
    framed = None
    if frame is not None:
        if image is None:
            raise BadInput("--frame needs --image (the frame is placed on it)")
        framed = FramedImage(image, frame)
        image, mask = _framed_pixels(framed, mask, args)
    if args.model is None and mask is None:
        if framed is not None:
            raise BadInput(
                "without --model only inpainting works: the frame lies inside the image, so "
                "give --mask too, or move the frame past the image's edge to outpaint"
            )
        raise BadInput("without --model only inpainting works: give --image and --mask")
    if args.model is not None and not args.server and not Path(args.model).expanduser().exists():
        raise BadInput(f"model not found: {args.model}")
    mode = Mode.INPAINT if mask is not None else Mode.IMG2IMG if image is not None else Mode.TXT2IMG
    crop_box = cropping.crop_box_for_mask(mask, args.padding) if mask is not None else None
    if framed is not None:
        crop_box = Box(0, 0, framed.frame.width, framed.frame.height)  # the frame is the area
    if mode is Mode.INPAINT and crop_box is None:
        raise BadInput("the mask is empty: paint the area to regenerate in white")
    seed = choose_seed(args.seed)
    request = Request(
        mode=mode,
        prompt=args.prompt,
        negative_prompt=args.negative,
        seed=seed,
        steps=args.steps,
        guidance=args.cfg,
        strength=args.strength,
        sampler=sampler,
        batch_size=args.batch,
        width=args.width,
        height=args.height,
        model_path=None if args.model is None else _on_server(args, args.model),
        model_size=args.model_size,
        image=image,
        mask=mask,
        crop_box=crop_box,
        mask_blur=args.mask_blur,
        padding=args.padding,
        color_match=args.color_match,
        controls=_controls(args, image, mode),
        loras=loras_of(args),
        references=_references(args),
    )
    return request, framed


def _frame_joined(argv: list[str]) -> list[str]:
    """``--frame -128,0,768,512`` as ``--frame=-128,...`` (argparse takes a value starting
    with ``-`` for an option)."""
    out: list[str] = []
    index = 0
    while index < len(argv):
        item = argv[index]
        if item == "--frame" and index + 1 < len(argv) and argv[index + 1].startswith("-"):
            out.append(f"--frame={argv[index + 1]}")
            index += 2
            continue
        out.append(item)
        index += 1
    return out


def _parse_frame(text: str | None) -> Box | None:
    if text is None:
        return None
    try:
        return parse_frame(text)
    except FrameSpecError as error:
        raise BadInput(str(error)) from None


def _framed_pixels(
    framed: FramedImage, mask: np.ndarray | None, args: argparse.Namespace
) -> tuple[np.ndarray, np.ndarray | None]:
    """The frame's pixels (RGBA, transparent where empty: the engine pre-fills them) and its
    mask: the empty part with a seam, plus ``--mask``; None when there is nothing to fill."""
    from inference import outpaint

    canvas = framed.canvas
    if (
        canvas.width * canvas.height > DEFAULT_PIXEL_LIMIT
        or max(canvas.width, canvas.height) > 32768
    ):
        raise BadInput(
            f"--frame {args.frame} would grow the image to {canvas.width}x{canvas.height}, "
            f"above the {DEFAULT_PIXEL_LIMIT / 1e6:.0f} MP limit"
        )
    if max(framed.frame.width, framed.frame.height) > 8192:
        raise BadInput(f"--frame {args.frame} is too large: each side can be at most 8192")
    rgba = framed.frame_rgba()  # the engine pre-fills its transparent pixels
    empty = rgba[..., 3] < 255
    seam = outpaint.seam_width(framed.frame.width, framed.frame.height)
    frame_mask = outpaint.outpaint_mask(empty, seam, framed.frame_mask(mask))
    image = rgba if empty.any() or framed.image.shape[2] == 4 else rgba[..., :3]
    if not (frame_mask > 127).any():
        return np.ascontiguousarray(image), None
    return np.ascontiguousarray(image), frame_mask


def _controls(args: argparse.Namespace, image: np.ndarray | None, mode: Mode) -> tuple:
    if len(args.control) != len(args.controlnet):
        raise BadInput("give one --controlnet for every --control image")
    if len(args.control_weight) > len(args.control):
        raise BadInput("more --control-weight values than --control images")
    if args.control and args.model is None:
        raise BadInput("ControlNet needs a diffusion --model")
    controls = []
    for index, (image_path, model_path) in enumerate(
        zip(args.control, args.controlnet, strict=True)
    ):
        if args.server:
            model_path = _on_server(args, model_path)
        elif not Path(model_path).expanduser().exists():
            raise BadInput(f"ControlNet model not found: {model_path}")
        else:
            _refuse_pickles([model_path], args.allow_pickle)
        control = _read_image(image_path, "control image")[..., :3]
        weight = args.control_weight[index] if index < len(args.control_weight) else 1.0
        controls.append(
            ControlInput(
                image=np.ascontiguousarray(control),
                model_path=model_path,
                control_type="custom",
                weight=weight,
            )
        )
    return tuple(controls)


def parse_lora_argument(text: str, option: str = "--lora", what: str = "LoRA") -> tuple[str, float]:
    """``PATH[:WEIGHT]`` -> (path, weight); the weight defaults to 1.0.

    The last ``:`` separates the weight when what follows it is a number, so paths with a colon
    (``C:\\loras\\x.safetensors``) work too. Existence is checked by the caller."""
    path, weight = text, 1.0
    head, sep, tail = text.rpartition(":")
    if sep and head:
        try:
            weight = float(tail)
        except ValueError:
            if Path(head).expanduser().exists() and not Path(text).expanduser().exists():
                raise BadInput(
                    f"bad {what} weight {tail!r} in {option} {text}: expected PATH[:WEIGHT], "
                    "WEIGHT a number such as 0.8"
                ) from None
        else:
            path = head
            if not math.isfinite(weight):
                raise BadInput(
                    f"bad {what} weight {tail!r} in {option} {text}: must be a finite number"
                )
    if not path:
        raise BadInput(f"{option} needs a path: PATH[:WEIGHT]")
    return path, weight


def choose_seed(seed: int | None) -> int:
    """``--seed``, or a random one when it is absent or -1 (as A1111)."""
    if seed is None or seed == -1:
        return int(np.random.default_rng().integers(0, 2**31))
    return seed


def loras_of(args: argparse.Namespace) -> tuple[tuple[str, float], ...]:
    """``--lora PATH[:WEIGHT]`` options checked (found, loadable, no pickles unless allowed);
    with ``--server``, names on the server."""
    from inference.loras import find_lora_file

    server = getattr(args, "server", None)
    if args.lora and args.model is None:
        raise BadInput("--lora needs a diffusion --model (the classic engine has no LoRAs)")
    loras = []
    for text in args.lora:
        path, weight = parse_lora_argument(text)
        if server:  # a name on the server
            loras.append((_on_server(args, path), weight))
            continue
        if not Path(path).expanduser().exists():
            raise BadInput(f"LoRA not found: {path}")
        try:
            find_lora_file(path)  # a folder must hold diffusers' LoRA weights file
        except ModelLoadError as error:
            raise BadInput(str(error)) from None
        loras.append((str(Path(path).expanduser()), weight))
    if not server:
        _refuse_pickles([p for p, _ in loras], args.allow_pickle)
    return tuple(loras)


def _references(args: argparse.Namespace) -> tuple[ReferenceInput, ...]:
    """``--reference IMAGE`` (repeatable) with ``--ip-adapter PATH[:WEIGHT]`` once for all or
    once per reference, ``--image-encoder`` likewise (default: ``image_encoder/`` beside the
    adapter), ``--style-only`` for all."""
    adapters, encoders = args.ip_adapter, args.image_encoder
    if not args.reference:
        if adapters or encoders or args.style_only:
            raise BadInput(
                "--ip-adapter, --image-encoder and --style-only need a --reference image"
            )
        return ()
    if args.model is None:
        raise BadInput("reference images need a diffusion --model")
    if args.server:
        raise BadInput("--reference does not work with --server yet (run the model locally)")
    if len(adapters) not in (1, len(args.reference)):
        raise BadInput("give one --ip-adapter for all --reference images, or one for each")
    if len(encoders) not in (0, 1, len(args.reference)):
        raise BadInput("give one --image-encoder for all --reference images, or one for each")
    references = []
    for index, image_path in enumerate(args.reference):
        path, weight = parse_lora_argument(
            adapters[index if len(adapters) > 1 else 0], "--ip-adapter", "IP-Adapter"
        )
        if not Path(path).expanduser().is_file():
            raise BadInput(f"IP-Adapter not found: {path}")
        encoder = encoders[index if len(encoders) > 1 else 0] if encoders else None
        if encoder is not None and not Path(encoder).expanduser().is_dir():
            raise BadInput(f"image encoder folder not found: {encoder}")
        _refuse_pickles([path], args.allow_pickle)
        picture = _read_image(image_path, "reference image")[..., :3]
        references.append(
            ReferenceInput(
                image=np.ascontiguousarray(picture),
                model_path=str(Path(path).expanduser()),
                image_encoder_path=str(Path(encoder).expanduser()) if encoder else None,
                weight=weight,
                style_only=bool(args.style_only),
            )
        )
    return tuple(references)


def _on_server(args: argparse.Namespace, name: str) -> str:
    """With --server a model argument is a name on the server (``NAME`` or ``NAME#HASH``)."""
    if not args.server:
        return name
    from inference.serve.wire import REMOTE_PREFIX

    return name if name.startswith(REMOTE_PREFIX) else REMOTE_PREFIX + name


def _remote_engine(args: argparse.Namespace):
    """The client of ``--server`` with the token from ``--token-file`` (or the server's default
    file on this machine)."""
    from inference.remote import RemoteEngine
    from inference.serve.auth import default_token_file, read_token_file

    path = Path(args.token_file) if args.token_file else default_token_file()
    try:
        token = read_token_file(path)
    except FileNotFoundError:
        raise BadInput(
            f"token file not found: {path} (give the server's token with --token-file)"
        ) from None
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise BadInput(f"cannot read the token file {path}: {error}") from None
    return RemoteEngine(args.server, token)


def _refuse_pickles(paths: list[str], allow_pickle: bool) -> None:
    """Pickle LoRAs/ControlNets are refused here, before any model loads."""
    from inference.models import refuse_pickles

    try:
        refuse_pickles(paths, allow_pickle)
    except ModelLoadError as error:
        raise BadInput(str(error)) from None


class _Progress:
    """A one-line terminal progress bar, plus optional per-step preview PNGs."""

    def __init__(self, quiet: bool, previews: Path | None) -> None:
        self.quiet, self.previews, self.start = quiet, previews, time.monotonic()
        self.line_open = False
        self.preview_error: str | None = None

    def __call__(self, step: int, total: int, image: np.ndarray, box=None, region=None) -> None:
        if self.previews is not None:
            from inference.parameters import write_png

            target = self.previews / f"step_{step:03d}.png"
            try:
                write_png(target, image)
            except OSError as error:  # previews are a courtesy: stop them, keep generating
                self.preview_error = f"previews stopped: cannot write {target}: {_reason(error)}"
                self.previews = None
        if self.quiet:
            return
        width = 30
        filled = int(width * step / max(total, 1))
        elapsed = time.monotonic() - self.start
        bar = "#" * filled + "-" * (width - filled)
        sys.stdout.write(f"\r[{bar}] {step}/{total}  {elapsed:5.1f}s")
        self.line_open = step != total
        if step == total:
            sys.stdout.write("\n")
        sys.stdout.flush()

    def close_line(self) -> None:
        if self.line_open:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.line_open = False


def output_paths(out: Path, count: int) -> list[Path]:
    """OUT.png for the first variant, OUT-2.png, OUT-3.png... for the rest."""
    return [out] + [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(2, count + 1)]


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _check_outputs(out: Path, previews: Path | None) -> None:
    """Refuse, before any work, outputs that clearly cannot be written."""
    try:
        check_writable_target(out)
    except OSError as error:
        where = error.filename or out
        raise BadInput(f"cannot write {where}: {_reason(error)}") from None
    if out.suffix.lower() != ".png":
        raise BadInput(f"--out must be a .png file (the recipe is kept in PNG text): {out}")
    if previews is not None:
        if previews.exists() and not previews.is_dir():
            raise BadInput(f"--previews must name a folder, but {previews} is a file")
        try:
            previews.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BadInput(
                f"cannot create the previews folder {previews}: {_reason(error)}"
            ) from None
        if not os.access(previews, os.W_OK | os.X_OK):
            raise BadInput(f"cannot write previews into {previews}: the folder is not writable")


def main(argv: list[str] | None = None) -> int:
    argv = _frame_joined(list(sys.argv[1:] if argv is None else argv))
    try:
        args = build_parser().parse_args(argv)
        _check_numbers(args)
        out = Path(args.out).expanduser()
        previews = Path(args.previews).expanduser() if args.previews else None
        _check_outputs(out, previews)
        request, framed = build_job(args)
        from inference.engine import validate_request

        validate_request(request)
        engine = _remote_engine(args) if args.server else None
    except (BadInput, InvalidRequestError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _generate(args, request, out, previews, engine, framed)


def _generate(
    args: argparse.Namespace,
    request: Request,
    out: Path,
    previews: Path | None,
    remote: EngineProtocol | None = None,
    framed: FramedImage | None = None,
) -> int:
    from inference.api import EngineSettings
    from inference.engine import Engine
    from inference.parameters import format_parameters

    if request.model_path is not None and remote is None:
        from inference.quiet import quiet_libraries

        quiet_libraries()
    local = Engine(EngineSettings(device=args.device, allow_pickle=args.allow_pickle))
    engine: EngineProtocol = remote or local
    cancel = CancelToken()
    progress = _Progress(args.quiet, previews)
    try:
        result = engine.run(request, progress, cancel)
    except (InvalidRequestError, ModelNotFoundError, ModelLoadError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Cancelled:
        print(f"{PROG}: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except EngineError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    finally:
        progress.close_line()
        if request.model_path is not None and remote is None:
            local.close()  # frees device memory; the classic engine holds none
    outputs = []
    for variant in result.variants:
        recipe = result.recipe.completed(seed=variant.seed)
        image = framed.compose(variant.image) if framed is not None else variant.image
        outputs.append((image, format_parameters(recipe), variant.seed))
    code = write_outputs(out, outputs)
    if progress.preview_error is not None:
        print(f"{PROG}: warning: {progress.preview_error}", file=sys.stderr)
    return code


Output = tuple[np.ndarray, str, int]  # image, A1111 parameters, seed


def write_outputs(out: Path, outputs: list[Output]) -> int:
    """Write every variant; if ``out`` fails, keep them all in a fallback folder and say where."""
    from inference.parameters import write_png

    paths = output_paths(out, len(outputs))
    for index, (path, (image, parameters, seed)) in enumerate(zip(paths, outputs, strict=True)):
        try:
            write_png(path, image, parameters)
        except OSError as error:
            kept = _keep_safe(out, outputs[index:])
            what = f"cannot write {error.filename or path}: {_reason(error)}"
            if kept is None:
                print(
                    f"{PROG}: error: {what}; the result could not be kept anywhere else either",
                    file=sys.stderr,
                )
            else:
                print(f"{PROG}: error: {what}; the result was kept in {kept}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"wrote {path} (seed {seed})")
    return 0


def fallback_folders() -> list[Path]:
    """Where an unwritable result goes instead: the user cache, then the temp folder."""
    import tempfile

    import platformdirs

    return [
        Path(platformdirs.user_cache_dir("impasto")) / "unsaved",
        Path(tempfile.gettempdir()) / "impasto-unsaved",
    ]


def _keep_safe(out: Path, outputs: list[Output]) -> Path | None:
    """Write ``outputs`` into the first fallback folder that takes them all; its path."""
    from inference.parameters import write_png

    stem = (out.stem or "result")[:60]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in fallback_folders():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for image, parameters, seed in outputs:
                write_png(folder / f"{stem}-{stamp}-{seed}.png", image, parameters)
        except OSError:
            continue
        return folder if len(outputs) > 1 else folder / f"{stem}-{stamp}-{outputs[0][2]}.png"
    return None
