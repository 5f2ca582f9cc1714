"""What the model library knows about one model on disk."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

# The problem every pickle file (.ckpt/.pt/.pth/.bin) is listed with: unpickling can run code.
PICKLE_PROBLEM = "pickle: not loaded unless allowed in settings"


class ModelKind(StrEnum):
    CHECKPOINT = "checkpoint"
    CONTROLNET = "controlnet"
    VAE = "vae"
    TAESD = "taesd"
    LORA = "lora"
    IP_ADAPTER = "ip-adapter"  # reference images (inference.ip_adapter)
    IMAGE_ENCODER = "image encoder"  # the CLIP vision folder an IP-Adapter reads through
    DEPTH_ESTIMATOR = "depth estimator"  # transformers depth-estimation folder (inference.depth)
    UNKNOWN = "unknown"


class Base(StrEnum):
    """The model family a file belongs to (what it can be combined with): the one vocabulary for
    families across ``inference/`` (library, loading, ControlNets, previews)."""

    SD1 = "SD1.x"
    SD2 = "SD2.x"
    SDXL = "SDXL"
    SDXL_REFINER = "SDXL refiner"
    SD3 = "SD3"
    FLUX = "Flux"
    UNKNOWN = "unknown"

    @property
    def latent_family(self) -> str | None:
        """Bases that share a latent space (and so VAEs and TAESD decoders)."""
        return _LATENT_FAMILY.get(self)

    @property
    def native_size(self) -> int:
        """The side length the base was trained at (SD1 512, SD2 768, SDXL 1024)."""
        return _NATIVE_SIZE.get(self, 512)

    @classmethod
    def parse(cls, text: str | Base) -> Base:
        """A base from its display value or a loose spelling (``sd1``, ``sd15``, ``sdxl``...)."""
        if isinstance(text, Base):
            return text
        squashed = re.sub(r"[^a-z0-9]", "", str(text).lower())
        for base in cls:
            if squashed == re.sub(r"[^a-z0-9]", "", base.value.lower()):
                return base
        return _ALIASES.get(squashed, cls.UNKNOWN)


_NATIVE_SIZE = {
    Base.SD1: 512,
    Base.SD2: 768,
    Base.SDXL: 1024,
    Base.SDXL_REFINER: 1024,
    Base.SD3: 1024,
    Base.FLUX: 1024,
}
_ALIASES = {
    "sd1": Base.SD1,
    "sd15": Base.SD1,
    "sd14": Base.SD1,
    "sd2": Base.SD2,
    "sd21": Base.SD2,
    "sdxl": Base.SDXL,
    "sdxlrefiner": Base.SDXL_REFINER,
    "sd3": Base.SD3,
    "flux": Base.FLUX,
}

_LATENT_FAMILY = {
    Base.SD1: "sd",
    Base.SD2: "sd",
    Base.SDXL: "sdxl",
    Base.SDXL_REFINER: "sdxl",
    Base.SD3: "sd3",
    Base.FLUX: "flux",
}


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
    def is_pickle(self) -> bool:
        return self.format is ModelFormat.PICKLE

    def with_pickle_allowed(self) -> ModelEntry:
        """This entry as it stands when the settings allow pickle files (their only problem
        gone); other entries are returned unchanged."""
        if self.problem == PICKLE_PROBLEM:
            return replace(self, problem=None)
        return self

    def works_with(self, base: Base) -> bool:
        """Whether this component can be used with a checkpoint of ``base``.

        An unknown base is never ruled out. VAEs and TAESD decoders only need the same latent
        space (SD1 and SD2 share one); ControlNets and LoRAs need the same base."""
        if Base.UNKNOWN in (self.base, base) or self.base == base:
            return True
        if self.kind in (ModelKind.VAE, ModelKind.TAESD):
            return self.base.latent_family == base.latent_family
        return False

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
        if self.kind is ModelKind.IP_ADAPTER:
            kind = "IP-Adapter"
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
