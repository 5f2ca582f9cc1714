"""Choosing a checkpoint the user has not named: the first pick and the inpaint partner."""

from __future__ import annotations

from app.model_choice import first_pick, inpaint_partner
from inference.library import Base, ModelEntry, ModelKind


def ckpt(name: str, base: Base = Base.SD1, inpaint: bool = False, mtime: int = 0, **kw):
    return ModelEntry(
        f"/m/{name}.safetensors",
        ModelKind.CHECKPOINT,
        base,
        inpaint,
        display_name=name,
        mtime_ns=mtime,
        **kw,
    )


def test_first_pick_prefers_the_remembered_then_the_newest_general_checkpoint():
    old, new = ckpt("dreamshaper_8", mtime=1), ckpt("realistic", mtime=5)
    inpaint = ckpt("dreamshaper_8_inpainting", inpaint=True, mtime=9)
    vae = ModelEntry("/m/vae.safetensors", ModelKind.VAE, Base.SD1)
    broken = ckpt("broken", mtime=99, problem="damaged")
    entries = [old, new, inpaint, vae, broken]
    assert first_pick(entries) == new
    assert first_pick(entries, old.path) == old
    assert first_pick(entries, "/gone.safetensors") == new
    assert first_pick([inpaint, vae]) == inpaint
    assert first_pick([vae, broken]) is None


def test_inpaint_partner_is_the_same_family_and_base():
    dream = ckpt("dreamshaper_8")
    dream_inpaint = ckpt("dreamshaper_8_inpainting", inpaint=True, mtime=1)
    other_inpaint = ckpt("sd-v1-5-inpainting", inpaint=True, mtime=7)
    xl_inpaint = ckpt("dreamshaper_xl_inpaint", Base.SDXL, inpaint=True, mtime=9)
    entries = [dream, dream_inpaint, other_inpaint, xl_inpaint]
    assert inpaint_partner(entries, dream) == dream_inpaint  # its own family wins
    assert inpaint_partner([dream, other_inpaint, xl_inpaint], dream) == other_inpaint  # same base
    assert inpaint_partner(entries, dream_inpaint) is None  # already an inpaint model
    assert inpaint_partner([dream, xl_inpaint], dream) is None
    assert inpaint_partner(entries, None) is None
