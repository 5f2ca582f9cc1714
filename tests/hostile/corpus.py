"""The hostile-input corpus: every case is built by a generator into a folder, never checked in.

A case names its input file, the output ``impasto convert`` writes, and what must happen:
``"ok"`` (exit 0, the output opens again) or ``"refused"`` (exit 2, one line on stderr, which
contains ``says`` when given). Cases come from the adversarial review of issue #10 and the
colour cases of #13.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from tests.hostile.builders import (
    grey16_png,
    impasto_ora,
    linear_rgb_icc,
    ora_bytes,
    png_claiming,
    small_png,
)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]  # writes the input into a folder, returns its path
    output: str = "out.ora"
    expect: str = "ok"  # "ok" | "refused"
    says: str = ""  # a piece of the one stderr line, for refusals
    window: bool = True  # also run through app.files open + save


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return build


def _image(name: str, image_factory: Callable[[], Image.Image], **params) -> Callable:
    def build(folder: Path) -> Path:
        path = folder / name
        image_factory().save(path, **params)
        return path

    return build


def _stack(layers: str, w: int = 64, h: int = 48, extra: str = "") -> str:
    return f'<?xml version="1.0"?><image w="{w}" h="{h}"{extra}><stack>{layers}</stack></image>'


def _layer(src: str = "data/a.png", **attrs: str) -> str:
    text = " ".join(f'{k}="{v}"' for k, v in attrs.items())
    return f'<layer src="{src}" {text}/>'


def _deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _lab_image() -> Image.Image:
    srgb, lab = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
    transform = ImageCms.buildTransform(srgb, lab, "RGB", "LAB")
    return ImageCms.applyTransform(Image.new("RGB", (16, 12), (200, 30, 40)), transform)


def _psd(mode: str, name: str = "Background\x00") -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        from psd_tools import PSDImage
        from psd_tools.api.layers import PixelLayer

        image = _lab_image() if mode == "LAB" else Image.new("RGB", (16, 12), (9, 99, 199))
        if mode not in ("LAB", "RGB"):
            image = image.convert(mode)
        psd = PSDImage.new(mode, image.size)
        PixelLayer.frompil(image, psd, name, top=0, left=0)
        path = folder / f"{mode.lower()}.psd"
        psd.save(path)
        return path

    return build


def _psd_deep(depth: int) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        from psd_tools import PSDImage
        from psd_tools.api.layers import PixelLayer

        psd = PSDImage.new("RGB", (16, 12), depth=depth)
        PixelLayer.frompil(Image.new("RGB", (16, 12), (200, 30, 40)), psd, "deep", top=0, left=0)
        path = folder / f"depth{depth}.psd"
        psd.save(path)
        return path

    return build


def _psd_header(width: int, height: int, depth: int = 8, mode: int = 3) -> bytes:
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, depth, mode)
    return header + b"\0" * 64


def _fifo(folder: Path) -> Path:
    path = folder / "pipe.png"
    os.mkfifo(path)
    return path


def _loop(folder: Path) -> Path:
    a, b = folder / "a.png", folder / "b.png"
    a.symlink_to(b)
    b.symlink_to(a)
    return a


def _long_name(folder: Path) -> Path:
    return folder / ("x" * 300 + ".png")  # the system refuses the name itself


def _folder(folder: Path) -> Path:
    path = folder / "folder.ora"
    path.mkdir()
    return path


def _truncated_real_ora(folder: Path) -> Path:
    data = impasto_ora([{"name": "a"}, {"name": "b", "png": small_png(32, 32)}])
    path = folder / "truncated.ora"
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def _zip_entry_lies(folder: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), b"image/openraster")
        archive.writestr("stack.xml", _stack(_layer()))
        archive.writestr("data/a.png", b"\0" * (8 << 20))
    data = bytearray(buffer.getvalue())
    # shrink the declared uncompressed size of data/a.png in both headers to 100 bytes
    real = struct.pack("<I", 8 << 20)
    data = data.replace(real, struct.pack("<I", 100))
    path = folder / "lies.ora"
    path.write_bytes(bytes(data))
    return path


BAD_ATTRS = {"a b": "x", "x\u0001": "y", "n": 5, "composite-op": "svg:mul\u0001tiply", "ok": "1"}

ORA_CASES = [
    Case(
        "ora_attrs_with_bad_names_and_values",
        _write("attrs.ora", impasto_ora([{"meta": {"extra": {"ora_attrs": BAD_ATTRS}}}])),
    ),
    Case(
        "composite_op_with_a_space",
        _write(
            "op.ora",
            ora_bytes(
                _stack(_layer(**{"composite-op": "svg:multiply x", "name": "a"})),
                {"data/a.png": small_png()},
            ),
        ),
    ),
    Case(
        "pose_at_1e308",
        _write(
            "pose.ora",
            impasto_ora(
                [
                    {
                        "kind": "pose",
                        "meta": {
                            "pose": {
                                "width": 64,
                                "height": 48,
                                "people": [{"pose_keypoints_2d": [[1e308, 1e308, True]] * 18}],
                            }
                        },
                    }
                ]
            ),
        ),
    ),
    Case(
        "control_settings_of_wrong_types",
        _write(
            "control.ora",
            impasto_ora(
                [
                    {
                        "kind": "control",
                        "meta": {"control": {"weight": "heavy", "start": [], "params": "x"}},
                    }
                ]
            ),
        ),
    ),
    Case(
        "recipe_of_wrong_types_exported_flat",
        _write(
            "recipe.ora",
            impasto_ora(
                [{"kind": "result", "meta": {"recipe": {"controls": 5, "seed": {"a": 1}}}}]
            ),
        ),
        output="out.png",
    ),
    Case(
        "odd_document_json",
        _write(
            "doc.ora",
            impasto_ora(
                [{}],
                document={"active_layer": True, "selection": {"x": "q"}, "generation_state": 7},
            ),
        ),
    ),
    Case(
        "canvas_of_1_gigapixel_in_a_few_hundred_bytes",
        _write(
            "canvas.ora", ora_bytes(_stack(_layer(), 32768, 32768), {"data/a.png": small_png()})
        ),
        expect="refused",
        says="above the limit",
    ),
    Case(
        "layers_declaring_gigapixels_together",
        _write(
            "layers.ora",
            ora_bytes(
                _stack("".join(_layer(f"data/{i}.png") for i in range(25))),
                {f"data/{i}.png": png_claiming(9000, 9000) for i in range(25)},
            ),
        ),
        expect="refused",
        says="together",
    ),
    Case(
        "one_layer_declaring_200_megapixels",
        _write("huge.ora", ora_bytes(_stack(_layer()), {"data/a.png": png_claiming(20000, 10000)})),
        expect="refused",
        says="above the limit",
    ),
    Case(
        "png_header_larger_than_its_data",
        _write("short.ora", ora_bytes(_stack(_layer()), {"data/a.png": png_claiming(3000, 3000)})),
        expect="refused",
        says="damaged",
    ),
    Case("zip_entry_lying_about_its_size", _truncated_real_ora, expect="refused"),
    Case("zip_expanding_beyond_declared", _zip_entry_lies, expect="refused"),
    Case(
        "xml_entity_bomb",
        _write(
            "bomb.ora",
            ora_bytes(
                '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
                '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><image w="8" h="8"><stack>'
                '<layer src="data/a.png" name="&b;"/></stack></image>',
                {"data/a.png": small_png()},
            ),
        ),
        expect="refused",
        says="entities",
    ),
    Case(
        "groups_nested_200_deep",
        _write(
            "deep.ora",
            ora_bytes(
                _stack("<stack>" * 200 + _layer() + "</stack>" * 200), {"data/a.png": small_png()}
            ),
        ),
        expect="refused",
        says="nested",
    ),
    Case(
        "json_nested_100000_deep",
        _write(
            "deepjson.ora",
            ora_bytes(
                _stack(_layer()),
                {"data/a.png": small_png(), "impasto/document.json": _deep_json(100_000)},
            ),
        ),
        expect="refused",
    ),
    Case(
        "offset_of_5000_digits",
        _write("digits.ora", ora_bytes(_stack(_layer(x="9" * 5000)), {"data/a.png": small_png()})),
        expect="refused",
    ),
    Case(
        "name_with_escaped_control_character",
        _write("ctl.ora", ora_bytes(_stack(_layer(name="a&#x1;b")), {"data/a.png": small_png()})),
        expect="refused",
        says="not valid XML",
    ),
    Case(
        "wrong_mimetype",
        _write("mime.ora", ora_bytes(_stack(_layer()), {}, mimetype=b"x")),
        expect="refused",
    ),
    Case("empty_file", _write("empty.ora", b""), expect="refused"),
    Case("a_folder", _folder, expect="refused", says="folder"),
]

IMAGE_CASES = [
    Case(
        "valid_png_40000_by_8",
        _image("strip.png", lambda: Image.new("L", (40000, 8), 128)),
        expect="refused",
        says="32768 pixels a side",
    ),
    Case(
        "png_declaring_10_gigapixels",
        _write("bomb.png", png_claiming(100_000, 100_000)),
        expect="refused",
        says="limit",
    ),
    Case(
        "grey_16_bit_png",
        _write("grey16.png", grey16_png(np.linspace(0, 65535, 64 * 48).reshape(48, 64))),
    ),
    Case("lab_tiff", _image("lab.tif", _lab_image)),
    Case(
        "cmyk_jpeg",
        _image("cmyk.jpg", lambda: Image.new("RGB", (16, 12), (200, 30, 40)).convert("CMYK")),
    ),
    Case(
        "jpeg_with_a_linear_profile",
        _image(
            "linear.jpg",
            lambda: Image.new("RGB", (16, 12), (128, 20, 240)),
            icc_profile=linear_rgb_icc(),
        ),
        output="out.webp",
    ),
    Case(
        "float_tiff", _image("float.tif", lambda: Image.fromarray(np.full((8, 8), 0.5, np.float32)))
    ),
    Case(
        "truncated_png", _write("cut.png", small_png(64, 64)[:60]), expect="refused", says="damaged"
    ),
    Case(
        "text_named_png",
        _write("text.png", b"hello, not a picture"),
        expect="refused",
        says="not an image",
    ),
    Case("fifo", _fifo, expect="refused", says="not a regular file"),
    Case("symlink_loop", _loop, expect="refused", says="loops"),
    Case("name_of_300_characters", _long_name, expect="refused", says="too long"),
    Case(
        "output_name_of_300_characters",
        _write("fine.png", small_png()),
        output="y" * 300 + ".ora",
        expect="refused",
        says="too long",
        window=False,
    ),
    Case(
        "output_in_a_missing_folder",
        _write("fine2.png", small_png()),
        output="missing/out.ora",
        expect="refused",
        says="does not exist",
        window=False,
    ),
    Case(
        "output_of_an_unknown_type",
        _write("fine3.png", small_png()),
        output="out.txt",
        expect="refused",
        says="cannot write",
        window=False,
    ),
]

PSD_CASES = [
    Case("lab_psd", _psd("LAB")),
    Case("cmyk_psd", _psd("CMYK")),
    Case("grey_psd_named_with_nul", _psd("L")),
    Case("psd_round_trip_through_psd", _psd("RGB"), output="out.psd"),
    Case("psd_16_bit", _psd_deep(16)),
    Case("psd_32_bit", _psd_deep(32), output="out.png"),
    Case(
        "psd_declaring_30000_squared",
        _write("big.psd", _psd_header(30000, 30000)),
        expect="refused",
        says="limit",
    ),
    Case("psd_header_only", _write("cut.psd", _psd_header(64, 64)), expect="refused"),
    Case(
        "psd_that_is_not",
        _write("no.psd", b"8BPX" + b"\0" * 40),
        expect="refused",
        says="not a Photoshop",
    ),
]

ALL_CASES = ORA_CASES + IMAGE_CASES + PSD_CASES


def unreadable_case() -> Case:
    """Only meaningful when not running as root (root reads everything)."""

    def build(folder: Path) -> Path:
        path = folder / "secret.png"
        path.write_bytes(small_png())
        path.chmod(0)
        return path

    return Case("unreadable_file", build, expect="refused", says="permission denied")


def case_json(case: Case) -> str:
    return json.dumps({"name": case.name, "output": case.output, "expect": case.expect})
