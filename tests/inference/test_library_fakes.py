"""Header-only fake model files with the real key names and shapes, plus fake A1111/ComfyUI trees.

The library classifies from tensor names and shapes alone, so a valid safetensors file whose data
is all zeros (written sparse: no disk cost for SDXL-sized shapes) is a faithful stand-in.
The tests at the bottom check that these fakes are real safetensors files.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

DTYPE_BYTES = {"F16": 2, "F32": 4, "BF16": 2}

Spec = dict[str, tuple[int, ...]]


def write_fake_safetensors(path: Path, spec: Spec, dtype: str = "F16") -> Path:
    """A valid safetensors file with the given tensor names and shapes (zeros, sparse)."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in spec.items():
        size = math.prod(shape) * DTYPE_BYTES[dtype]
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)))
        handle.write(raw)
        handle.truncate(8 + len(raw) + offset)
    return path


_LDM = "model.diffusion_model."


def _sd_unet(in_channels: int, context: int, linear_proj: bool) -> Spec:
    return {
        _LDM + "input_blocks.0.0.weight": (320, in_channels, 3, 3),
        _LDM + "input_blocks.1.1.proj_in.weight": (320, 320) if linear_proj else (320, 320, 1, 1),
        _LDM + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, context),
        _LDM + "out.2.weight": (4, 320, 3, 3),
    }


_FIRST_STAGE: Spec = {
    "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3),
    "first_stage_model.decoder.conv_in.weight": (512, 4, 3, 3),
    "first_stage_model.quant_conv.weight": (8, 8, 1, 1),
}


def sd1_checkpoint(inpaint: bool = False) -> Spec:
    return {
        **_sd_unet(9 if inpaint else 4, 768, linear_proj=False),
        "cond_stage_model.transformer.text_model.final_layer_norm.weight": (768,),
        **_FIRST_STAGE,
    }


def sd2_checkpoint(inpaint: bool = False) -> Spec:
    return {
        **_sd_unet(9 if inpaint else 4, 1024, linear_proj=True),
        "cond_stage_model.model.ln_final.weight": (1024,),
        **_FIRST_STAGE,
    }


def sdxl_checkpoint(inpaint: bool = False) -> Spec:
    return {
        _LDM + "input_blocks.0.0.weight": (320, 9 if inpaint else 4, 3, 3),
        _LDM + "label_emb.0.0.weight": (1280, 2816),
        _LDM + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
        "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": (768,),
        "conditioner.embedders.1.model.ln_final.weight": (1280,),
        **_FIRST_STAGE,
    }


def sdxl_refiner_checkpoint() -> Spec:
    return {
        _LDM + "input_blocks.0.0.weight": (384, 4, 3, 3),
        _LDM + "label_emb.0.0.weight": (1536, 2560),
        "conditioner.embedders.0.model.ln_final.weight": (1280,),
        **_FIRST_STAGE,
    }


def ldm_controlnet(context: int = 768, prefix: str = "control_model.") -> Spec:
    return {
        prefix + "input_hint_block.0.weight": (16, 3, 3, 3),
        prefix + "input_blocks.0.0.weight": (320, 4, 3, 3),
        prefix + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, context),
        prefix + "zero_convs.0.0.weight": (320, 320, 1, 1),
        prefix + "middle_block_out.0.weight": (1280, 1280, 1, 1),
    }


def diffusers_controlnet(sdxl: bool) -> Spec:
    spec: Spec = {
        "controlnet_cond_embedding.conv_in.weight": (16, 3, 3, 3),
        "conv_in.weight": (320, 4, 3, 3),
        "controlnet_down_blocks.0.weight": (320, 320, 1, 1),
    }
    if sdxl:
        spec["add_embedding.linear_1.weight"] = (1280, 2816)
        spec["down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight"] = (640, 2048)
    else:
        spec["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"] = (320, 768)
    return spec


def ldm_vae() -> Spec:
    return {
        "encoder.conv_in.weight": (128, 3, 3, 3),
        "encoder.down.0.block.0.conv1.weight": (128, 128, 3, 3),
        "decoder.conv_in.weight": (512, 4, 3, 3),
        "decoder.up.0.block.0.conv1.weight": (128, 256, 3, 3),
        "quant_conv.weight": (8, 8, 1, 1),
        "post_quant_conv.weight": (4, 4, 1, 1),
    }


def diffusers_vae() -> Spec:
    return {
        "encoder.conv_in.weight": (128, 3, 3, 3),
        "encoder.down_blocks.0.resnets.0.conv1.weight": (128, 128, 3, 3),
        "decoder.conv_in.weight": (512, 4, 3, 3),
        "decoder.up_blocks.0.resnets.0.conv1.weight": (512, 512, 3, 3),
    }


def taesd_decoder(latent_channels: int = 4) -> Spec:
    # madebyollin's Decoder is an nn.Sequential: 0 = Clamp (no weights), 1 = first conv, ...
    return {
        "1.weight": (64, latent_channels, 3, 3),
        "1.bias": (64,),
        "3.conv.0.weight": (64, 64, 3, 3),
        "3.conv.2.weight": (64, 64, 3, 3),
        "14.weight": (3, 64, 3, 3),
        "14.bias": (3,),
    }


def kohya_lora_sd1() -> Spec:
    return {
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (
            4,
            768,
        ),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": (
            320,
            4,
        ),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha": (),
        "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": (4, 768),
        "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": (3072, 4),
    }


def kohya_lora_sd2() -> Spec:
    return {
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (
            4,
            1024,
        ),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": (
            320,
            4,
        ),
    }


def kohya_lora_sdxl() -> Spec:
    return {
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": (4, 2048),
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight": (640, 4),
        "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": (4, 768),
        "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": (4, 1280),
    }


def peft_lora_sdxl_unet_only() -> Spec:
    key = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"
    return {key + ".lora_A.weight": (8, 2048), key + ".lora_B.weight": (640, 8)}


def text_encoder_only() -> Spec:
    return {
        "text_model.embeddings.token_embedding.weight": (49408, 768),
        "text_model.final_layer_norm.weight": (768,),
    }


def flux_transformer() -> Spec:
    return {
        "double_blocks.0.img_attn.qkv.weight": (9216, 3072),
        "single_blocks.0.linear1.weight": (21504, 3072),
    }


def write_a1111_tree(root: Path) -> Path:
    """A fake AUTOMATIC1111 install (with a venv the scan must not crawl)."""
    webui = root / "stable-diffusion-webui"
    models = webui / "models"
    write_fake_safetensors(models / "Stable-diffusion" / "sd15.safetensors", sd1_checkpoint())
    write_fake_safetensors(
        models / "Stable-diffusion" / "sub" / "sd15-inpainting.safetensors",
        sd1_checkpoint(inpaint=True),
    )
    (models / "Stable-diffusion" / "legacy.ckpt").write_bytes(b"PK\x03\x04 pickle zip")
    write_fake_safetensors(
        models / "ControlNet" / "control_sd15_canny.safetensors", ldm_controlnet()
    )
    write_fake_safetensors(models / "VAE" / "vae-ft-mse-840000.safetensors", ldm_vae())
    write_fake_safetensors(models / "Lora" / "styles" / "ink.safetensors", kohya_lora_sd1())
    (models / "VAE-approx").mkdir(parents=True)
    (models / "VAE-approx" / "taesd_decoder.pth").write_bytes(b"PK\x03\x04 pickle zip")
    (models / "ESRGAN").mkdir()
    (models / "ESRGAN" / "4x.pth").write_bytes(b"not ours")
    write_fake_safetensors(
        webui
        / "extensions"
        / "sd-webui-controlnet"
        / "models"
        / "control_v11p_sd21_openpose.safetensors",
        ldm_controlnet(context=1024),
    )
    write_fake_safetensors(webui / "venv" / "lib" / "stray.safetensors", sd1_checkpoint())
    return webui


def write_comfyui_tree(root: Path) -> Path:
    comfy = root / "ComfyUI"
    models = comfy / "models"
    write_fake_safetensors(models / "checkpoints" / "sdxl_base.safetensors", sdxl_checkpoint())
    write_fake_safetensors(
        models / "checkpoints" / "sdxl_inpaint.safetensors", sdxl_checkpoint(inpaint=True)
    )
    controlnet = models / "controlnet" / "controlnet-canny-sdxl"
    controlnet.mkdir(parents=True)
    (controlnet / "config.json").write_text(
        json.dumps(
            {
                "_class_name": "ControlNetModel",
                "cross_attention_dim": 2048,
                "addition_embed_type": "text_time",
            }
        )
    )
    write_fake_safetensors(
        controlnet / "diffusion_pytorch_model.safetensors", diffusers_controlnet(True)
    )
    write_fake_safetensors(
        models / "controlnet" / "sd15_depth.safetensors", diffusers_controlnet(False)
    )
    write_fake_safetensors(models / "vae" / "sdxl_vae.safetensors", diffusers_vae())
    write_fake_safetensors(models / "loras" / "detail_xl.safetensors", kohya_lora_sdxl())
    write_fake_safetensors(models / "vae_approx" / "taesdxl_decoder.safetensors", taesd_decoder())
    write_fake_safetensors(models / "clip" / "clip_l.safetensors", text_encoder_only())
    return comfy


# ---- the fakes are real safetensors files -------------------------------------------------


def test_fake_file_is_valid_safetensors(tmp_path: Path) -> None:
    from safetensors import safe_open

    path = write_fake_safetensors(tmp_path / "x.safetensors", sdxl_checkpoint())
    with safe_open(str(path), framework="numpy") as handle:
        assert set(handle.keys()) == set(sdxl_checkpoint())
        tensor = handle.get_tensor("model.diffusion_model.input_blocks.0.0.weight")
    assert tensor.shape == (320, 4, 3, 3)
    assert tensor.dtype == np.float16 and not tensor.any()


def test_fake_trees_hold_their_files(tmp_path: Path) -> None:
    webui = write_a1111_tree(tmp_path)
    comfy = write_comfyui_tree(tmp_path)
    assert (webui / "models" / "Stable-diffusion" / "sd15.safetensors").is_file()
    assert (comfy / "models" / "controlnet" / "controlnet-canny-sdxl" / "config.json").is_file()
