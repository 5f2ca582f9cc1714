"""The wire format without a server: a request survives the trip exactly; hostile or
out-of-limit input is refused with one sentence before anything is decoded or run."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from inference.api import (
    Box,
    ControlInput,
    InvalidRequestError,
    Mode,
    ModelNotFoundError,
    Request,
    ResizeMode,
)
from inference.serve.auth import authorised, load_or_create_token
from inference.serve.wire import (
    Limits,
    ModelRef,
    request_from_wire,
    request_to_wire,
)


def resolve(ref: ModelRef, kind: str) -> str:
    if ref.name == "missing":
        raise ModelNotFoundError(f"this server has no {kind} named {ref.name!r}")
    return f"/srv/{kind}/{ref.name}"


def sample_request() -> Request:
    rng = np.random.default_rng(3)
    mask = np.zeros((48, 64), np.uint8)
    mask[8:40, 8:40] = 255
    return Request(
        mode=Mode.INPAINT,
        prompt="a cat, ünïcode ✓",
        negative_prompt="blurry",
        seed=2**40,
        steps=12,
        guidance=6.5,
        strength=0.8,
        batch_size=2,
        model_path="remote:sd15#abcdef1234",
        image=rng.integers(0, 256, (48, 64, 4), dtype=np.uint8),
        mask=mask,
        crop_box=Box(0, 0, 64, 48),
        controls=(
            ControlInput(
                image=rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
                model_path="/home/me/models/canny.safetensors",
                control_type="canny",
                weight=0.7,
                end=0.9,
                resize_mode=ResizeMode.JUST_RESIZE,
            ),
        ),
        loras=(("/home/me/loras/ink.safetensors", 0.8),),
    )


def test_a_request_survives_the_wire_exactly():
    request = sample_request()
    data = json.loads(json.dumps(request_to_wire(request)))
    assert data["model"] == {"name": "sd15", "hash": "abcdef1234"}
    assert data["loras"] == [{"name": "ink.safetensors", "hash": None, "weight": 0.8}]
    back = request_from_wire(data, resolve, Limits())
    assert np.array_equal(back.image, request.image) and back.image.dtype == np.uint8
    assert np.array_equal(back.mask, request.mask)
    assert np.array_equal(back.controls[0].image, request.controls[0].image)
    assert back.model_path == "/srv/checkpoint/sd15"
    assert back.controls[0].model_path == "/srv/controlnet/canny.safetensors"
    assert back.loras == (("/srv/lora/ink.safetensors", 0.8),)
    for name in ("mode", "prompt", "negative_prompt", "seed", "steps", "guidance", "strength"):
        assert getattr(back, name) == getattr(request, name)
    assert (back.batch_size, back.crop_box) == (2, Box(0, 0, 64, 48))
    control = back.controls[0]
    assert (control.control_type, control.weight, control.end, control.resize_mode) == (
        "canny",
        0.7,
        0.9,
        ResizeMode.JUST_RESIZE,
    )


def _png_header_only(width: int, height: int) -> str:
    """A PNG that declares a huge size (a decompression bomb's header, no pixel data)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + data).decode()


def _jpeg(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image": _png_header_only(50_000, 50_000)}, "above this server's"),
        ({"image": _jpeg(64, 48)}, "not a readable PNG"),
        ({"image": "%%%"}, "not valid base64"),
        ({"image": 5}, "base64 PNG string"),
        ({"steps": True}, "steps must be a whole number"),
        ({"steps": 5000}, "steps must be between 1 and 1000"),
        ({"batch_size": 65}, "batch_size must be between 1 and 64"),
        ({"guidance": math.nan}, "guidance must be a finite number"),
        ({"sampler": "Warp 9"}, "unknown sampler"),
        ({"mode": "outpaint"}, "mode must be one of"),
        ({"crop_box": [0, 0, 999, 48]}, "crop_box reaches outside the image"),
        ({"crop_box": "0,0,1,1"}, "crop_box must be"),
        ({"model": {"name": "missing"}}, "no checkpoint named 'missing'"),
        ({"model": "../../etc/passwd"}, "checkpoint must be"),
        ({"loras": [{"name": "missing", "weight": 1}]}, "no lora named 'missing'"),
        ({"controls": [{"image": "", "pickle": "x"}]}, "unknown or missing fields"),
        ({"prompt": "x" * 20_001}, "prompt is longer than"),
        ({"__reduce__": "os.system"}, "unknown request field(s): __reduce__"),
        ({"mask_blur": -1}, "mask_blur must be between"),
    ],
)
def test_hostile_or_oversized_input_is_refused_in_one_sentence(change, message):
    data = json.loads(json.dumps(request_to_wire(sample_request())))
    data.update(change)
    with pytest.raises((InvalidRequestError, ModelNotFoundError)) as error:
        request_from_wire(json.loads(json.dumps(data)), resolve, Limits())
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_token_is_made_once_with_mode_0600_and_checked_exactly(tmp_path):
    path = tmp_path / "config" / "serve-token"
    token = load_or_create_token(path)
    assert len(token) >= 40 and load_or_create_token(path) == token
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o600
    assert authorised(f"Bearer {token}", token)
    assert not authorised(f"Bearer {token}x", token)
    assert not authorised(token, token) and not authorised(None, token)
    assert not authorised("Bearer ", token)


def test_what_the_wire_cannot_carry_is_refused_before_sending_never_dropped():
    from inference.api import ReferenceInput, UpscaleSpec
    from inference.remote import RemoteEngine

    picture = np.zeros((64, 64, 3), np.uint8)
    with_reference = Request(
        mode=Mode.TXT2IMG,
        model_path="/models/sd15",
        references=(
            ReferenceInput(image=picture, model_path="/models/ip-adapter_sd15.safetensors"),
        ),
    )
    upscale = Request(mode=Mode.IMG2IMG, image=picture, upscale=UpscaleSpec(scale=2.0))
    with pytest.raises(InvalidRequestError, match="reference images"):
        request_to_wire(with_reference)
    with pytest.raises(InvalidRequestError, match="upscaling"):
        request_to_wire(upscale)
    # the client refuses before it opens a connection (port 9 on loopback: nothing listens)
    engine = RemoteEngine("http://127.0.0.1:9", token="t")
    with pytest.raises(InvalidRequestError, match="reference images"):
        engine.run(with_reference)
