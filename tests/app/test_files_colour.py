"""Imports come in as 8-bit sRGB, correctly: high bit depths scaled, embedded ICC profiles
converted with littleCMS, CMYK/Lab/grey read; exports carry an sRGB profile; the pixel limit
means what it says."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageCms
from psd_tools import PSDImage
from psd_tools.api.layers import PixelLayer
from psd_tools.constants import Resource

from app import files
from app.document import Document
from app.image_io import ImageLoadError, load_rgba, srgb_icc_bytes, to_srgb_rgba
from tests.hostile.builders import grey16_png, linear_grey_icc, linear_rgb_icc

RED = (200, 30, 40)


def _srgb_to_linear(value: float) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _lab_image(rgb=RED, size=(8, 6)) -> Image.Image:
    srgb, lab = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
    transform = ImageCms.buildTransform(srgb, lab, "RGB", "LAB")
    return ImageCms.applyTransform(Image.new("RGB", size, rgb), transform)


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 16).reshape(16, 64).astype(np.uint16)
    path = tmp_path / "grey16.png"
    path.write_bytes(grey16_png(ramp))
    rgba = load_rgba(path)
    expected = (ramp.astype(np.int64) * 255 + 32767) // 65535
    assert np.abs(rgba[..., 0].astype(int) - expected).max() <= 1
    assert (rgba[..., 0] == 255).mean() < 0.02  # was ~99.6% white when clipped
    assert (rgba[..., 3] == 255).all() and (rgba[..., 0] == rgba[..., 2]).all()


@pytest.mark.parametrize(
    "fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("TIFF", ".tif"), ("WEBP", ".webp")]
)
def test_embedded_icc_profile_is_converted_to_srgb(tmp_path, fmt, suffix):
    path = tmp_path / f"linear{suffix}"
    params = {"quality": 100} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "WEBP":
        params["lossless"] = True
    Image.new("RGB", (16, 16), (128, 20, 240)).save(
        path, format=fmt, icc_profile=linear_rgb_icc(), **params
    )
    rgba = load_rgba(path)
    # linear 128, 20, 240 is sRGB ~188, ~79, ~248 (unconverted it would stay 128, 20, 240)
    assert np.abs(rgba[8, 8, :3].astype(int) - (188, 79, 248)).max() <= 3


def test_grey_with_a_linear_profile(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("L", (4, 4), 128).save(path, icc_profile=linear_grey_icc())
    assert abs(int(load_rgba(path)[0, 0, 0]) - 188) <= 2


def test_broken_profile_is_ignored_not_fatal(tmp_path, caplog):
    path = tmp_path / "broken.png"
    Image.new("RGB", (4, 4), RED).save(path, icc_profile=b"not a profile at all" * 10)
    assert tuple(load_rgba(path)[0, 0, :3]) == RED
    assert "colour profile" in caplog.text


def test_lab_tiff_and_cmyk_jpeg(tmp_path):
    lab = tmp_path / "lab.tif"
    _lab_image().save(lab)
    assert np.abs(load_rgba(lab)[0, 0, :3].astype(int) - RED).max() <= 4
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("RGB", (8, 8), RED).convert("CMYK").save(cmyk, quality=100)
    assert np.abs(load_rgba(cmyk)[4, 4, :3].astype(int) - RED).max() <= 4


@pytest.mark.parametrize(
    "mode",
    [
        "1",
        "L",
        "P",
        "LA",
        "PA",
        "RGB",
        "RGBA",
        "CMYK",
        "YCbCr",
        "HSV",
        "I",
        "F",
        "I;16",
        "La",
        "RGBa",
        "RGBX",
    ],
)
def test_every_pillow_mode_converts_to_8_bit_rgba(mode):
    image = Image.new("RGB", (6, 4), RED).convert(mode) if mode not in ("I;16", "F", "I") else None
    if mode == "I;16":
        image = Image.frombytes("I;16", (6, 4), np.full((4, 6), 65535 // 2, "<u2").tobytes())
    elif mode == "I":
        image = Image.fromarray(np.full((4, 6), 65535 // 2, np.int32), "I")
    elif mode == "F":
        image = Image.fromarray(np.full((4, 6), 0.5, np.float32), "F")
    rgba = to_srgb_rgba(image, "x")
    assert rgba.dtype == np.uint8 and rgba.shape == (4, 6, 4)
    if mode in ("I;16", "I", "F"):
        assert abs(int(rgba[0, 0, 0]) - 128) <= 1


def test_lab_that_cannot_be_converted_is_refused_by_name(monkeypatch):
    from app import image_io

    def fail(*_args, **_kwargs):
        raise ImageCms.PyCMSError("no transform")

    lab = _lab_image()
    monkeypatch.setattr(ImageCms, "buildTransform", fail)
    monkeypatch.setattr(ImageCms, "profileToProfile", fail)
    with pytest.raises(ImageLoadError, match="Lab colour is not supported") as caught:
        image_io.to_srgb_rgba(lab, "lab.tif")
    assert "damaged" not in str(caught.value)


def _psd_with(mode: str, image: Image.Image, name: str, icc: bytes | None = None) -> PSDImage:
    psd = PSDImage.new(mode, image.size)
    PixelLayer.frompil(image, psd, name, top=0, left=0)
    if icc is not None:
        from psd_tools.psd.image_resources import ImageResource

        psd._record.image_resources[Resource.ICC_PROFILE] = ImageResource(
            key=Resource.ICC_PROFILE, name="", data=icc
        )
    return psd


@pytest.mark.parametrize("mode", ["LAB", "CMYK", "RGB"])
def test_psd_colour_modes_come_in_right(tmp_path, mode):
    image = _lab_image() if mode == "LAB" else Image.new("RGB", (8, 6), RED).convert(mode)
    path = tmp_path / f"{mode}.psd"
    _psd_with(mode, image, "Background\x00").save(path)
    doc = files.open_document(path)
    layer = doc.layers[0]
    assert layer.name == "Background"  # Krita's trailing NUL stripped
    pixel = layer.raster.data[3, 4]
    assert pixel[3] == 255 and np.abs(pixel[:3].astype(int) - RED).max() <= 4


def test_psd_embedded_profile_is_converted(tmp_path):
    path = tmp_path / "linear.psd"
    _psd_with("RGB", Image.new("RGB", (8, 6), (128, 20, 240)), "L", linear_rgb_icc()).save(path)
    pixel = files.open_document(path).layers[0].raster.data[2, 2]
    assert np.abs(pixel[:3].astype(int) - (188, 79, 248)).max() <= 3


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".psd"])
def test_exports_carry_an_srgb_profile(tmp_path, suffix):
    doc = Document.blank(16, 12, fill=(*RED, 255))
    path = tmp_path / f"out{suffix}"
    files.save_any(doc, path)
    if suffix == ".psd":
        icc = PSDImage.open(path).image_resources.get_data(Resource.ICC_PROFILE)
    else:
        with Image.open(path) as image:
            icc = image.info.get("icc_profile")
    assert icc == srgb_icc_bytes()
    description = ImageCms.getProfileDescription(
        ImageCms.ImageCmsProfile(__import__("io").BytesIO(icc))
    )
    assert "sRGB" in description
    back = files.open_document(path).layers[0].raster.data[5, 5, :3].astype(int)
    assert np.abs(back - RED).max() <= (0 if suffix in (".png", ".psd") else 3)


# ---- the pixel limit means what it says --------------------------------------------------------


def test_just_under_the_limit_opens_even_above_pillows_own_threshold(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("L", (1000, 990), 7).save(path)  # 0.99 MP
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400_000)  # Pillow would refuse above 0.8 MP
    assert load_rgba(path, pixel_limit=1_000_000).shape == (990, 1000, 4)
    with pytest.raises(ImageLoadError, match="above the 1 MP limit"):
        load_rgba(path, pixel_limit=900_000)
    # raising the limit works: Pillow's own threshold follows ours, for this open only
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert load_rgba(path, pixel_limit=2_000_000).shape == (990, 1000, 4)
    assert Image.MAX_IMAGE_PIXELS == 100  # the rest of the process keeps its own threshold


def test_far_above_the_limit_is_our_sentence_not_pillows(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (3000, 3000)).save(path)  # 9 MP
    with pytest.raises(ImageLoadError, match=r"above the 1 MP limit; raise the limit"):
        load_rgba(path, pixel_limit=1_000_000)


def test_wider_than_a_canvas_can_be_is_one_sentence(tmp_path):
    path = tmp_path / "strip.png"
    Image.new("L", (40000, 8)).save(path)
    with pytest.raises(ImageLoadError, match="at most 32768 pixels a side"):
        files.open_document(path)


@pytest.mark.parametrize("mode,name", [(7, "Multichannel"), (8, "Duotone"), (0, "Bitmap")])
def test_psd_modes_we_cannot_read_are_named_not_called_damaged(tmp_path, mode, name):
    import struct

    path = tmp_path / "odd.psd"
    path.write_bytes(b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 8, 8, 8, mode) + b"\0" * 40)
    with pytest.raises(files.OpenError, match=f"this {name} PSD could not be read") as caught:
        files.open_document(path)
    assert "damaged" not in str(caught.value)
