"""What the model library knows about one model on disk."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ModelKind(StrEnum):
    CHECKPOINT = "checkpoint"
    CONTROLNET = "controlnet"
    VAE = "vae"
    TAESD = "taesd"
    LORA = "lora"
    UNKNOWN = "unknown"


class Base(StrEnum):
    """The model family a file belongs to (what it can be combined with)."""

    SD1 = "SD1.x"
    SD2 = "SD2.x"
    SDXL = "SDXL"
    SDXL_REFINER = "SDXL refiner"
    SD3 = "SD3"
    FLUX = "Flux"
    UNKNOWN = "unknown"

    def compatible_with(self, other: Base) -> bool:
        """True when a component of this base can be used with a checkpoint of ``other``.

        An unknown base is never ruled out; SD1 and SD2 share their VAE and TAESD latent space,
        SDXL and its refiner share theirs."""
        if Base.UNKNOWN in (self, other) or self == other:
            return True
        return {self, other} in ({Base.SDXL, Base.SDXL_REFINER},)


class ModelFormat(StrEnum):
    DIFFUSERS = "diffusers"  # a folder with model_index.json or config.json
    SAFETENSORS = "safetensors"
    PICKLE = "pickle"  # .ckpt / .pt / .pth / .bin: never opened by the library
    FOLDER = "folder"  # a folder that could not be read or understood
    MISSING = "missing"


@dataclass(frozen=True)
class ModelEntry:
    path: str
    kind: ModelKind
    base: Base = Base.UNKNOWN
    inpaint: bool = False
    size: int = 0  # bytes (for folders: all files inside)
    hash: str | None = None  # A1111 short hash (10 hex); None until computed or for folders
    display_name: str = ""
    problem: str | None = None  # why this entry cannot be used, in words; None when fine
    format: ModelFormat = ModelFormat.SAFETENSORS
    sha256: str | None = None
    mtime_ns: int = 0

    @property
    def usable(self) -> bool:
        return self.problem is None and self.kind is not ModelKind.UNKNOWN

    @property
    def hashable(self) -> bool:
        """Single files get an A1111-style hash; diffusers folders have none."""
        return self.format in (ModelFormat.SAFETENSORS, ModelFormat.PICKLE) and self.size > 0

    @property
    def size_text(self) -> str:
        return format_size(self.size)

    def summary(self) -> str:
        """Short description such as ``SDXL checkpoint, inpaint, 6.9 GB``."""
        parts = []
        kind = self.kind.value if self.kind is not ModelKind.TAESD else "TAESD"
        if self.kind is ModelKind.VAE:
            kind = "VAE"
        if self.kind is ModelKind.LORA:
            kind = "LoRA"
        if self.kind is ModelKind.CONTROLNET:
            kind = "ControlNet"
        parts.append(kind if self.base is Base.UNKNOWN else f"{self.base.value} {kind}")
        if self.inpaint:
            parts.append("inpaint")
        if self.size:
            parts.append(self.size_text)
        return ", ".join(parts)


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - loop always returns
