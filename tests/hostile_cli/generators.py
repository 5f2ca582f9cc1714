# ruff: noqa: E501, RUF005  (a table of cases reads best one case per line)
"""Generators of hostile inputs for the headless commands (``impasto generate|pose|models``).

Every file is made here, in code, from a few bytes: crafted PNG headers that declare huge images,
safetensors headers with malformed JSON, pose JSON nested 100,000 deep, pickles that run code.
Each :class:`Case` says which command line to run on them; ``test_hostile_cli`` runs each one as a
real process under a memory cap.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Case:
    name: str
    # (folder with the generated files) -> argv after ``python -m app.main``
    argv: Callable[[Path], list[str]]
    exit_codes: frozenset[int] = frozenset({2})
    stdout_has: tuple[str, ...] = ()  # text the output must contain (e.g. listed problems)
    stderr_has: str = ""  # text the one stderr line must contain
    files: Callable[[Path], None] | None = field(default=None, compare=False)


# ---- raw file builders ----------------------------------------------------------------------


def png_header_only(width: int, height: int, mode: int = 0) -> bytes:
    """A PNG that declares ``width`` x ``height`` (grey, 8 bit) with one tiny empty IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00"))
        + chunk(b"IEND", b"")
    )


def safetensors(header: bytes | dict | list | str, payload: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


def ok_tensor(shape: list[int]) -> dict:
    size = int(np.prod(shape)) * 2 if shape else 2
    return {"dtype": "F16", "shape": shape, "data_offsets": [0, size]}


def write_scene(folder: Path) -> None:
    """A 64x48 photo, its mask, an EXIF-rotated copy and a matching mask, plus hostile files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(folder / "img.png")
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:40] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(folder / "empty_mask.png")
    # stored 64x48 with orientation 6 (rotate 90 CW on display): shown 48x64
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(
        folder / "rotated.jpg", exif=exif.tobytes()
    )
    tall = np.zeros((64, 48), np.uint8)
    tall[10:30, 10:30] = 255
    Image.fromarray(tall).save(folder / "tall_mask.png")
    (folder / "bomb.png").write_bytes(png_header_only(20000, 10000))
    (folder / "over_limit.png").write_bytes(png_header_only(12000, 10000))
    (folder / "truncated.png").write_bytes((folder / "img.png").read_bytes()[:90])
    (folder / "noise.png").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (folder / "a_folder.png").mkdir(exist_ok=True)
    fifo = folder / "fifo.png"
    if not fifo.exists():
        os.mkfifo(fifo)
    (folder / "not_png.json").write_text("{}")


def write_poses(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "deep_object.json").write_text('{"a":' * 50_000 + "1" + "}" * 50_000)
    (folder / "bigint.json").write_text(
        '{"canvas_width": ' + "9" * 5000 + ', "canvas_height": 64, "people": []}'
    )
    (folder / "huge_canvas.json").write_text(
        '{"canvas_width":65536,"canvas_height":65536,"people":[]}'
    )
    (folder / "thin_canvas.json").write_text('{"canvas_width":1,"canvas_height":65536,"people":[]}')
    (folder / "inf_canvas.json").write_text('{"canvas_width":1e400,"canvas_height":64,"people":[]}')
    body = [10.0, 10.0, 1.0] * 17 + [1e308, 1e308, 1.0]
    (folder / "far_point.json").write_text(
        json.dumps(
            {"canvas_width": 64, "canvas_height": 64, "people": [{"pose_keypoints_2d": body}]}
        )
    )
    wrong = {"canvas_width": 64, "canvas_height": 64, "people": [{"pose_keypoints_2d": "x"}]}
    (folder / "wrong_type.json").write_text(json.dumps(wrong))
    (folder / "latin1.json").write_bytes(
        b'{"people": [], "canvas_width": 8, "canvas_height": 8, "x": "\xe9"}'
    )
    with open(folder / "oversized.json", "wb") as handle:  # 51 MB of spaces, then an object
        handle.seek(51 * 1024 * 1024)
        handle.write(b"{}")
    fifo = folder / "fifo.json"
    if not fifo.exists():
        os.mkfifo(fifo)
    good = {"canvas_width": 64, "canvas_height": 64, "people": []}
    (folder / "good.json").write_text(json.dumps(good))


BAD_SAFETENSORS: dict[str, bytes] = {
    "metadata_list": safetensors({"__metadata__": [1, 2], "w": ok_tensor([2])}, b"\0" * 4),
    "metadata_string": safetensors({"__metadata__": "hello", "w": ok_tensor([2])}, b"\0" * 4),
    "shape_1e400": safetensors(
        b'{"w": {"dtype": "F16", "shape": [1e400], "data_offsets": [0, 2]}}', b"\0" * 2
    ),
    "huge_int": safetensors(
        b'{"w": {"dtype": "F16", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 2]}}'
    ),
    "deep_json": safetensors(b'{"w": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    "negative_shape": safetensors({"w": {"dtype": "F16", "shape": [-4], "data_offsets": [0, 2]}}),
    "offsets_backwards": safetensors({"w": {"dtype": "F16", "shape": [1], "data_offsets": [9, 2]}}),
    "entry_not_object": safetensors({"w": 7}),
    "header_list": safetensors([1, 2, 3]),
    "length_lies": struct.pack("<Q", 2**63) + b"{}",
    "truncated": safetensors({"w": ok_tensor([1024])}, b"\0" * 10),
    "rank0_unet": safetensors(
        {
            "model.diffusion_model.input_blocks.0.0.weight": ok_tensor([]),
            "cond_stage_model.transformer.x": ok_tensor([1]),
        },
        b"\0" * 4,
    ),
    "empty": b"",
}


def write_models(folder: Path) -> None:
    """Every malformed safetensors above, plus one well-formed LoRA that must still be listed."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in BAD_SAFETENSORS.items():
        (folder / f"{name}.safetensors").write_bytes(data)
    lora = {
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (
            ok_tensor([4, 768])
        ),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": (
            ok_tensor([320, 4])
        ),
    }
    payload = b"\0" * (4 * 768 * 2 + 320 * 4 * 2)
    lora["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight"][
        "data_offsets"
    ] = [4 * 768 * 2, len(payload)]
    (folder / "good_lora.safetensors").write_bytes(safetensors(lora, payload))


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def write_pickles(folder: Path) -> None:
    """An old-format pickle, and one whose unpickling would run a shell command."""
    import pickle

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "evil.ckpt", "wb") as handle:
        pickle.dump({"state_dict": {"x": _RunsCode()}}, handle)
    (folder / "lora_style.pt").write_bytes((folder / "evil.ckpt").read_bytes())


def generate(prefix: list[str], *extra: str) -> Callable[[Path], list[str]]:
    """argv for ``generate`` with ``{d}`` in any argument replaced by the corpus folder."""
    return lambda d: ["generate", "--prompt", "x", *[a.format(d=d) for a in (*prefix, *extra)]]


_INPAINT = ["--image", "{d}/scene/img.png", "--mask", "{d}/scene/mask.png"]
_OUT = ["--out", "{d}/out/result.png"]


def cases() -> list[Case]:
    long_name = "n" * 300 + ".png"
    gen = [
        Case("generate-ok", generate(_INPAINT + _OUT), frozenset({0})),
        Case(
            "generate-exif-rotated",
            generate(
                ["--image", "{d}/scene/rotated.jpg", "--mask", "{d}/scene/tall_mask.png"] + _OUT
            ),
            frozenset({0}),
        ),
        Case("generate-bomb-image", generate(["--image", "{d}/scene/bomb.png", "--mask", "{d}/scene/mask.png"] + _OUT), stderr_has="too large"),
        Case("generate-bomb-mask", generate(["--image", "{d}/scene/img.png", "--mask", "{d}/scene/bomb.png"] + _OUT), stderr_has="too large"),
        Case("generate-over-limit", generate(["--image", "{d}/scene/over_limit.png", "--mask", "{d}/scene/mask.png"] + _OUT), stderr_has="MP limit"),
        Case("generate-truncated", generate(["--image", "{d}/scene/truncated.png", "--mask", "{d}/scene/mask.png"] + _OUT), stderr_has="cannot read image"),
        Case("generate-noise", generate(["--image", "{d}/scene/noise.png", "--mask", "{d}/scene/mask.png"] + _OUT), stderr_has="cannot read image"),
        Case("generate-image-folder", generate(["--image", "{d}/scene/a_folder.png", "--mask", "{d}/scene/mask.png"] + _OUT), stderr_has="folder"),
        Case("generate-image-fifo", generate(["--image", "{d}/scene/fifo.png", "--mask", "{d}/scene/mask.png"] + _OUT), stderr_has="not a regular file"),
        Case("generate-image-dev-zero", generate(["--image", "/dev/zero", "--mask", "{d}/scene/mask.png"] + _OUT), stderr_has="not a regular file"),
        Case("generate-mask-size", generate(["--image", "{d}/scene/img.png", "--mask", "{d}/scene/tall_mask.png"] + _OUT), stderr_has="the mask is"),
        Case("generate-empty-mask", generate(["--image", "{d}/scene/img.png", "--mask", "{d}/scene/empty_mask.png"] + _OUT), stderr_has="empty"),
        Case("generate-out-folder", generate(_INPAINT, "--out", "{d}/out"), stderr_has="folder"),
        Case("generate-out-long-name", generate(_INPAINT, "--out", "{d}/out/" + long_name), stderr_has="too long"),
        Case("generate-out-missing-folder", generate(_INPAINT, "--out", "{d}/nowhere/x.png"), stderr_has="does not exist"),
        Case("generate-out-not-png", generate(_INPAINT, "--out", "{d}/out/x.jpg"), stderr_has=".png"),
        Case("generate-mask-blur-huge", generate(_INPAINT + _OUT, "--mask-blur", "100000"), stderr_has="--mask-blur"),
        Case("generate-mask-blur-negative", generate(_INPAINT + _OUT, "--mask-blur", "-1"), stderr_has="--mask-blur"),
        Case("generate-previews-is-file", generate(_INPAINT + _OUT, "--previews", "{d}/scene/img.png"), stderr_has="--previews"),
        Case("generate-steps-huge", generate(_INPAINT + _OUT, "--steps", "1" + "0" * 30), stderr_has="steps"),
        Case("generate-cfg-nan", generate(_INPAINT + _OUT, "--cfg", "nan"), stderr_has="--cfg"),
        Case("generate-strength-inf", generate(_INPAINT + _OUT, "--strength", "inf"), stderr_has="--strength"),
        Case("generate-seed-huge", generate(_INPAINT + _OUT, "--seed", "9" * 40), stderr_has="--seed"),
        Case("generate-padding-huge", generate(_INPAINT + _OUT, "--padding", "9" * 20), stderr_has="--padding"),
        Case("generate-batch-huge", generate(_INPAINT + _OUT, "--batch", "100000"), stderr_has="batch"),
        Case("generate-unknown-option", generate(_INPAINT + _OUT, "--frobnicate"), stderr_has="unrecognized"),
        Case("generate-no-arguments", lambda d: ["generate"], stderr_has="required"),
        Case("generate-model-missing", generate(_INPAINT + _OUT, "--model", "{d}/nope.safetensors"), stderr_has="not found"),
        Case("generate-model-pickle", generate(_INPAINT + _OUT, "--model", "{d}/pickles/evil.ckpt"), stderr_has="pickle"),
        Case("generate-lora-pickle", generate(_INPAINT + _OUT, "--model", "{d}/models/metadata_list.safetensors", "--lora", "{d}/pickles/lora_style.pt"), stderr_has="pickle"),
        Case("generate-model-malformed", generate(_INPAINT + _OUT, "--model", "{d}/models/metadata_list.safetensors"), stderr_has="metadata_list"),
        Case("generate-model-evil-pickle-allowed", generate(_INPAINT + _OUT, "--model", "{d}/pickles/evil.ckpt", "--allow-pickle"), stderr_has="was not loaded"),
    ]  # fmt: skip

    def pose(name: str, *extra: str) -> Callable[[Path], list[str]]:
        return lambda d: ["pose", "render", name.format(d=d), *[a.format(d=d) for a in extra]]

    out = ("--out", "{d}/out/pose.png")
    poses = [
        Case("pose-deep", pose("{d}/poses/deep.json", *out), stderr_has="nested"),
        Case("pose-deep-object", pose("{d}/poses/deep_object.json", *out), stderr_has="nested"),
        Case("pose-bigint", pose("{d}/poses/bigint.json", *out), stderr_has="digits"),
        Case("pose-huge-canvas", pose("{d}/poses/huge_canvas.json", *out), stderr_has="MP limit"),
        Case("pose-derived-height", pose("{d}/poses/thin_canvas.json", "--width", "65536", *out), stderr_has="MP limit"),
        Case("pose-inf-canvas", pose("{d}/poses/inf_canvas.json", *out), stderr_has="canvas_width"),
        Case("pose-far-point", pose("{d}/poses/far_point.json", *out), stderr_has="far outside"),
        Case("pose-wrong-type", pose("{d}/poses/wrong_type.json", *out), stderr_has="list of numbers"),
        Case("pose-latin1", pose("{d}/poses/latin1.json", *out), stderr_has="UTF-8"),
        Case("pose-oversized", pose("{d}/poses/oversized.json", *out), stderr_has="MB"),
        Case("pose-dev-zero", pose("/dev/zero", *out), stderr_has="not a regular file"),
        Case("pose-fifo", pose("{d}/poses/fifo.json", *out), stderr_has="not a regular file"),
        Case("pose-folder", pose("{d}/poses", *out), stderr_has="folder"),
        Case("pose-out-folder", pose("{d}/poses/good.json", "--out", "{d}/out"), stderr_has="folder"),
        Case("pose-out-missing-folder", pose("{d}/poses/good.json", "--out", "{d}/nowhere/p.png"), stderr_has="{d}/nowhere"),
        Case("pose-bad-confidence", pose("{d}/poses/good.json", "--min-confidence", "nan", *out), stderr_has="threshold"),
        Case("pose-ok", pose("{d}/poses/good.json", *out), frozenset({0})),
        Case("pose-new-huge", lambda d: ["pose", "new", "--out", f"{d}/out/p.json", "--width", "65536", "--height", "65536"], stderr_has="MP limit"),
    ]  # fmt: skip
    models = [
        Case(
            "models-malformed-folder",
            lambda d: ["models", f"{d}/models"],
            frozenset({0}),
            stdout_has=(*(f"{n}.safetensors" for n in BAD_SAFETENSORS), "good_lora", "1 usable"),
        ),
        Case(
            "models-pickles",
            lambda d: ["models", f"{d}/pickles"],
            frozenset({0}),
            stdout_has=("pickle: not loaded unless allowed in settings", "0 usable"),
        ),
        Case("models-missing", lambda d: ["models", f"{d}/nowhere"], stderr_has="no such"),
        Case("models-bad-option", lambda d: ["models", "--frobnicate"], stderr_has="unrecognized"),
    ]
    return gen + poses + models


def build_corpus(folder: Path) -> Path:
    write_scene(folder / "scene")
    write_poses(folder / "poses")
    write_models(folder / "models")
    write_pickles(folder / "pickles")
    (folder / "out").mkdir(parents=True, exist_ok=True)
    return folder
