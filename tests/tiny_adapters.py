"""Tiny random-weight T2I-Adapters that fit the tiny UNets of :mod:`tests.tiny_models`.

The tiny UNets' first down block is a plain ``DownBlock2D`` (32 channels), which receives an
adapter residual *after* its downsampler, at 1/16 of the image. So a fitting adapter has one level
of 32 channels with ``downscale_factor=16`` (real SD1.5 adapters have four levels at 1/8..1/64 for
UNets whose first block has attention; the maths in the UNet is the same).

- :func:`build_tiny_adapter` -> a ``T2IAdapter`` in memory (``sdxl=True``: ``full_adapter_xl``)
- :func:`save_tiny_adapter` -> the diffusers folder (``config.json`` + safetensors)
- :func:`save_tiny_ip_adapter` -> an ``ip-adapter*.safetensors`` fitting a tiny UNet, with a tiny
  CLIP image encoder folder beside it
"""

from __future__ import annotations

from pathlib import Path

TINY_ADAPTER_CHANNELS = [32]


def build_tiny_adapter(seed: int = 0, sdxl: bool = False):
    import torch
    from diffusers import T2IAdapter

    torch.manual_seed(seed)
    adapter = T2IAdapter(
        in_channels=3,
        channels=TINY_ADAPTER_CHANNELS,
        num_res_blocks=1,
        downscale_factor=16,
        adapter_type="full_adapter_xl" if sdxl else "full_adapter",
    ).eval()
    with torch.no_grad():  # random init is near zero at the output: make the effect visible
        for parameter in adapter.parameters():
            parameter.mul_(3.0)
    return adapter


def save_tiny_adapter(directory: str | Path, seed: int = 0, sdxl: bool = False) -> Path:
    directory = Path(directory)
    build_tiny_adapter(seed=seed, sdxl=sdxl).save_pretrained(directory, safe_serialization=True)
    return directory


# ---- IP-Adapters and CLIP image encoders --------------------------------------------------------

TINY_ENCODER_PROJECTION = 16
TINY_ENCODER_HIDDEN = 32


def build_tiny_image_encoder(seed: int = 0):
    """A two-layer ``CLIPVisionModelWithProjection`` (32 px images, 16-wide image embeds)."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    config = CLIPVisionConfig(
        hidden_size=TINY_ENCODER_HIDDEN,
        intermediate_size=37,
        projection_dim=TINY_ENCODER_PROJECTION,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
    )
    return CLIPVisionModelWithProjection(config).eval()


def save_tiny_image_encoder(directory: str | Path, seed: int = 0) -> Path:
    directory = Path(directory)
    build_tiny_image_encoder(seed).save_pretrained(directory, safe_serialization=True)
    return directory


def tiny_ip_adapter_state(unet, seed: int = 0, plus: bool = False) -> dict:
    """A random IP-Adapter state dict (the flat ``image_proj.*`` / ``ip_adapter.*`` layout of
    the ``ip-adapter*.safetensors`` files) fitting ``unet``'s cross-attention layers.

    ``plus``: a Resampler projection reading the encoder's hidden states (IP-Adapter Plus)."""
    import torch

    generator = torch.Generator().manual_seed(seed)

    def random(*shape: int, scale: float = 0.3) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * scale

    cross = int(unet.config.cross_attention_dim)
    blocks = list(unet.config.block_out_channels)
    state: dict = {}
    if plus:
        state.update(_resampler_state(random, cross, TINY_ENCODER_HIDDEN))
    else:
        state["image_proj.proj.weight"] = random(cross * 4, TINY_ENCODER_PROJECTION)
        state["image_proj.proj.bias"] = random(cross * 4)
        state["image_proj.norm.weight"] = 1 + random(cross, scale=0.1)
        state["image_proj.norm.bias"] = random(cross, scale=0.1)
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = blocks[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(blocks))[int(name.split(".")[1])]
        else:
            hidden = blocks[int(name.split(".")[1])]
        state[f"ip_adapter.{key_id}.to_k_ip.weight"] = random(hidden, cross)
        state[f"ip_adapter.{key_id}.to_v_ip.weight"] = random(hidden, cross)
        key_id += 2
    return state


def _resampler_state(random, cross: int, embed: int, width: int = 64, tokens: int = 4) -> dict:
    """IPAdapterPlusImageProjection weights: four blocks, one head of 64 (diffusers reads the head
    count as width // 64), ffn x4."""
    state = {
        "image_proj.latents": random(1, tokens, width),
        "image_proj.proj_in.weight": random(width, embed),
        "image_proj.proj_in.bias": random(width),
        "image_proj.proj_out.weight": random(cross, width),
        "image_proj.proj_out.bias": random(cross),
        "image_proj.norm_out.weight": 1 + random(cross, scale=0.1),
        "image_proj.norm_out.bias": random(cross, scale=0.1),
    }
    for depth in range(4):  # diffusers always builds four blocks
        layer = f"image_proj.layers.{depth}"
        for norm in ("0.norm1", "0.norm2", "1.0"):
            state[f"{layer}.{norm}.weight"] = 1 + random(width, scale=0.1)
            state[f"{layer}.{norm}.bias"] = random(width, scale=0.1)
        state[f"{layer}.0.to_q.weight"] = random(width, width)
        state[f"{layer}.0.to_kv.weight"] = random(2 * width, width)
        state[f"{layer}.0.to_out.weight"] = random(width, width)
        state[f"{layer}.1.1.weight"] = random(4 * width, width)
        state[f"{layer}.1.3.weight"] = random(width, 4 * width)
    return state


def save_tiny_ip_adapter(
    directory: str | Path, unet, seed: int = 0, plus: bool = False, name: str = ""
) -> Path:
    """``directory/ip-adapter_tiny.safetensors`` fitting ``unet``, with the tiny image encoder
    beside it in ``directory/image_encoder/`` (h94/IP-Adapter's layout). Returns the file."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (
        name or ("ip-adapter-plus_tiny.safetensors" if plus else "ip-adapter_tiny.safetensors")
    )
    state = tiny_ip_adapter_state(unet, seed=seed, plus=plus)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    if not (directory / "image_encoder" / "config.json").is_file():
        save_tiny_image_encoder(directory / "image_encoder")
    return path


# ---- depth estimation -------------------------------------------------------------------------


def save_tiny_depth_model(directory: str | Path, seed: int = 0) -> Path:
    """A tiny random ``DPTForDepthEstimation`` with its image processor, as a transformers
    folder (config.json, preprocessor_config.json, model.safetensors): what the user's local
    DPT / Depth Anything folder looks like."""
    import torch
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    directory = Path(directory)
    torch.manual_seed(seed)
    config = DPTConfig(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=37,
        image_size=32,
        patch_size=8,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[8, 8, 16, 16],
        fusion_hidden_size=16,
        head_in_index=-1,
        initializer_range=0.3,  # the default 0.02 leaves the random map blind to the picture
    )
    model = DPTForDepthEstimation(config).eval()
    with torch.no_grad():  # the head ends in ReLUs: lift it so the random map is not all zero
        for module in model.head.modules():
            if isinstance(module, torch.nn.Conv2d) and module.bias is not None:
                module.bias.add_(0.5)
    model.save_pretrained(directory, safe_serialization=True)
    DPTImageProcessor(
        size={"height": 32, "width": 32}, keep_aspect_ratio=False, ensure_multiple_of=8
    ).save_pretrained(directory)
    return directory


def diffusers_to_original(state: dict, num_res_blocks: int) -> dict:
    """diffusers ``T2IAdapter`` keys -> TencentARC's original layout (``conv_in``,
    ``body.N.block1``...): the inverse of ``inference.adapters.original_to_diffusers``."""
    out = {}
    for key, value in state.items():
        rest = key.removeprefix("adapter.")
        if rest.startswith("conv_in."):
            out[rest] = value
            continue
        _body, level, part, *tail = rest.split(".")
        if part == "in_conv":
            out[f"body.{int(level) * num_res_blocks}.in_conv.{tail[0]}"] = value
        else:  # resnets.J.block1.weight
            index = int(level) * num_res_blocks + int(tail[0])
            out[f"body.{index}.{'.'.join(tail[1:])}"] = value
    return out


def save_tiny_adapter_file(
    path: str | Path, layout: str = "diffusers", seed: int = 0, in_channels: int = 3
) -> Path:
    """The tiny adapter as ONE file: ``layout="diffusers"`` (``adapter.*`` keys, as re-shared
    ``.safetensors``) or ``"original"`` (TencentARC's keys); a ``.pth`` path writes a torch
    pickle. One level of 32 channels (what the tiny UNet takes), two blocks."""
    import torch
    from diffusers import T2IAdapter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    adapter = T2IAdapter(
        in_channels=in_channels,
        channels=TINY_ADAPTER_CHANNELS,
        num_res_blocks=2,
        downscale_factor=16,
        adapter_type="full_adapter",
    ).eval()
    with torch.no_grad():
        for parameter in adapter.parameters():
            parameter.mul_(3.0)
    state = {k: v.contiguous() for k, v in adapter.state_dict().items()}
    if layout == "original":
        state = diffusers_to_original(state, 2)
    if path.suffix == ".pth":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file

        save_file(state, str(path))
    return path
