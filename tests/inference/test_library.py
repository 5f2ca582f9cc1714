"""Model library: classification from headers, folder layouts, robustness, hash cache."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from inference.api import CancelToken
from inference.library import (
    Base,
    LibraryCache,
    ModelEntry,
    ModelFormat,
    ModelKind,
    default_folders,
    fill_hashes,
    hf_hub_cache,
    inspect_path,
    read_header,
    scan_folders,
    sha256_file,
)
from inference.library.header import HeaderError
from tests.inference import test_library_fakes as fakes


def by_name(entries: tuple[ModelEntry, ...] | list[ModelEntry]) -> dict[str, ModelEntry]:
    return {e.display_name: e for e in entries}


# ---- single files: every kind -----------------------------------------------------------

CASES = [
    ("sd15", fakes.sd1_checkpoint(), ModelKind.CHECKPOINT, Base.SD1, False),
    ("sd15-inpainting", fakes.sd1_checkpoint(inpaint=True), ModelKind.CHECKPOINT, Base.SD1, True),
    ("sd21", fakes.sd2_checkpoint(), ModelKind.CHECKPOINT, Base.SD2, False),
    ("sd2-inpaint", fakes.sd2_checkpoint(inpaint=True), ModelKind.CHECKPOINT, Base.SD2, True),
    ("sdxl", fakes.sdxl_checkpoint(), ModelKind.CHECKPOINT, Base.SDXL, False),
    ("sdxl-inpaint", fakes.sdxl_checkpoint(inpaint=True), ModelKind.CHECKPOINT, Base.SDXL, True),
    ("refiner", fakes.sdxl_refiner_checkpoint(), ModelKind.CHECKPOINT, Base.SDXL_REFINER, False),
    ("cn-sd15", fakes.ldm_controlnet(768), ModelKind.CONTROLNET, Base.SD1, False),
    ("cn-sd21", fakes.ldm_controlnet(1024), ModelKind.CONTROLNET, Base.SD2, False),
    ("cn-noprefix", fakes.ldm_controlnet(768, prefix=""), ModelKind.CONTROLNET, Base.SD1, False),
    (
        "cn-with-sd-model",
        {**fakes.sd1_checkpoint(), **fakes.ldm_controlnet(768)},
        ModelKind.CONTROLNET,
        Base.SD1,
        False,
    ),
    (
        "cn-model-prefix",
        fakes.ldm_controlnet(1024, prefix="model.control_model."),
        ModelKind.CONTROLNET,
        Base.SD2,
        False,
    ),
    ("cn-xl-diffusers", fakes.diffusers_controlnet(True), ModelKind.CONTROLNET, Base.SDXL, False),
    ("cn-15-diffusers", fakes.diffusers_controlnet(False), ModelKind.CONTROLNET, Base.SD1, False),
    ("vae-ft-mse-840000", fakes.ldm_vae(), ModelKind.VAE, Base.SD1, False),
    ("sdxl_vae", fakes.diffusers_vae(), ModelKind.VAE, Base.SDXL, False),
    ("some_vae", fakes.ldm_vae(), ModelKind.VAE, Base.UNKNOWN, False),
    ("taesd_decoder", fakes.taesd_decoder(), ModelKind.TAESD, Base.SD1, False),
    ("taesdxl_decoder", fakes.taesd_decoder(), ModelKind.TAESD, Base.SDXL, False),
    ("lora-sd1", fakes.kohya_lora_sd1(), ModelKind.LORA, Base.SD1, False),
    ("lora-sd2", fakes.kohya_lora_sd2(), ModelKind.LORA, Base.SD2, False),
    ("lora-xl", fakes.kohya_lora_sdxl(), ModelKind.LORA, Base.SDXL, False),
    ("lora-peft-xl", fakes.peft_lora_sdxl_unet_only(), ModelKind.LORA, Base.SDXL, False),
]


@pytest.mark.parametrize(
    ("name", "spec", "kind", "base", "inpaint"), CASES, ids=[c[0] for c in CASES]
)
def test_single_file_classification(
    tmp_path: Path, name: str, spec: dict, kind: ModelKind, base: Base, inpaint: bool
) -> None:
    path = fakes.write_fake_safetensors(tmp_path / f"{name}.safetensors", spec)
    entry = inspect_path(path)
    assert (entry.kind, entry.base, entry.inpaint) == (kind, base, inpaint)
    assert entry.problem is None and entry.usable
    assert entry.format is ModelFormat.SAFETENSORS
    assert entry.size == path.stat().st_size and entry.display_name == name
    assert entry.hash is None  # not computed until fill_hashes


def test_unknown_and_unsupported_files_are_listed_with_a_reason(tmp_path: Path) -> None:
    clip = fakes.write_fake_safetensors(tmp_path / "clip_l.safetensors", fakes.text_encoder_only())
    flux = fakes.write_fake_safetensors(tmp_path / "flux1.safetensors", fakes.flux_transformer())
    clip_entry, flux_entry = inspect_path(clip), inspect_path(flux)
    assert clip_entry.kind is ModelKind.UNKNOWN and "text_model" in clip_entry.problem
    assert (flux_entry.kind, flux_entry.base) == (ModelKind.CHECKPOINT, Base.FLUX)
    assert "not supported" in flux_entry.problem and not flux_entry.usable


def test_header_reader_returns_names_dtypes_shapes(tmp_path: Path) -> None:
    path = fakes.write_fake_safetensors(tmp_path / "m.safetensors", fakes.ldm_vae(), dtype="F32")
    header = read_header(path)
    assert header.shape("decoder.conv_in.weight") == (512, 4, 3, 3)
    assert header.tensors["quant_conv.weight"].dtype == "F32"
    assert header.metadata == {"format": "pt"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "too short"),
        (b"\x40\x00\x00\x00\x00\x00\x00\x00{not json at all", "truncated"),
        (b"\x08\x00\x00\x00\x00\x00\x00\x00notjson!", "not JSON"),
        (b"\xff" * 64, "implausible header length"),
        (b"\x02\x00\x00\x00\x00\x00\x00\x00[]", "not a JSON object"),
    ],
)
def test_header_errors_say_why(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(HeaderError, match=reason):
        read_header(path)
    entry = inspect_path(path)
    assert entry.kind is ModelKind.UNKNOWN and reason in entry.problem


def test_truncated_weights_are_reported(tmp_path: Path) -> None:
    path = fakes.write_fake_safetensors(tmp_path / "cut.safetensors", fakes.sd1_checkpoint())
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    entry = inspect_path(path)
    assert entry.kind is ModelKind.UNKNOWN and "truncated" in entry.problem


# ---- real tiny models built by tests/tiny_models.py -------------------------------------


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from diffusers import AutoencoderTiny
    from safetensors.torch import save_file

    from tests import tiny_models

    root = tmp_path_factory.mktemp("tiny")
    tiny_models.save_tiny_model(root / "tiny-sd")
    tiny_models.save_tiny_model(root / "tiny-sd-inpaint", inpaint=True)
    tiny_models.save_tiny_single_file(root / "files" / "tiny.safetensors")
    tiny_models.save_tiny_single_file(root / "files" / "tiny-inpaint.safetensors", inpaint=True)
    tiny_models.save_tiny_controlnet(root / "tiny-controlnet")
    tiny_models.save_tiny_controlnet(root / "files" / "tiny-cn.safetensors", single_file=True)
    vae = tiny_models.build_tiny_vae()
    vae.save_pretrained(root / "tiny-vae", safe_serialization=True)
    save_file(vae.state_dict(), str(root / "files" / "tiny-vae.safetensors"))
    taesd = AutoencoderTiny(
        encoder_block_out_channels=(8,) * 4, decoder_block_out_channels=(8,) * 4
    )
    taesd.save_pretrained(root / "tiny-taesd", safe_serialization=True)
    return root


def test_tiny_models_in_every_saved_form(tiny_models: Path) -> None:
    entries = scan_folders([tiny_models]).entries
    found = {Path(e.path).relative_to(tiny_models).as_posix(): e for e in entries}
    expected = {
        "tiny-sd": (ModelKind.CHECKPOINT, Base.SD1, False, ModelFormat.DIFFUSERS),
        "tiny-sd-inpaint": (ModelKind.CHECKPOINT, Base.SD1, True, ModelFormat.DIFFUSERS),
        "files/tiny.safetensors": (ModelKind.CHECKPOINT, Base.SD1, False, ModelFormat.SAFETENSORS),
        "files/tiny-inpaint.safetensors": (
            ModelKind.CHECKPOINT,
            Base.SD1,
            True,
            ModelFormat.SAFETENSORS,
        ),
        "tiny-controlnet": (ModelKind.CONTROLNET, Base.UNKNOWN, False, ModelFormat.DIFFUSERS),
        "files/tiny-cn.safetensors": (
            ModelKind.CONTROLNET,
            Base.UNKNOWN,
            False,
            ModelFormat.SAFETENSORS,
        ),
        "tiny-vae": (ModelKind.VAE, Base.SD1, False, ModelFormat.DIFFUSERS),
        "files/tiny-vae.safetensors": (ModelKind.VAE, Base.UNKNOWN, False, ModelFormat.SAFETENSORS),
        "tiny-taesd": (ModelKind.TAESD, Base.SD1, False, ModelFormat.DIFFUSERS),
    }
    # The sidecar ``<stem>.config/`` folders are configs for the files, not models of their own.
    assert set(found) == set(expected)
    for name, (kind, base, inpaint, fmt) in expected.items():
        entry = found[name]
        assert (entry.kind, entry.base, entry.inpaint, entry.format) == (kind, base, inpaint, fmt)
        assert entry.problem is None, (name, entry.problem)
        assert entry.size > 0


def test_diffusers_folder_without_weights_or_index(tmp_path: Path, tiny_models: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_models / "tiny-sd", broken)
    (broken / "model_index.json").unlink()
    empty = tmp_path / "no-weights"
    shutil.copytree(tiny_models / "tiny-sd", empty, ignore=shutil.ignore_patterns("*.safetensors"))
    garbled = tmp_path / "garbled"
    shutil.copytree(tiny_models / "tiny-sd", garbled)
    (garbled / "model_index.json").write_text("{oops")
    found = by_name(scan_folders([tmp_path]).entries)
    assert "no model_index.json" in found["broken"].problem
    assert "incomplete download" in found["no-weights"].problem
    assert "malformed JSON" in found["garbled"].problem


# ---- A1111, ComfyUI and Hugging Face layouts ----------------------------------------------


def test_a1111_tree(tmp_path: Path) -> None:
    webui = fakes.write_a1111_tree(tmp_path)
    found = by_name(scan_folders([webui]).entries)
    assert found["sd15"].kind is ModelKind.CHECKPOINT and not found["sd15"].inpaint
    assert found["sd15-inpainting"].inpaint and found["sd15-inpainting"].base is Base.SD1
    assert found["control_sd15_canny"].kind is ModelKind.CONTROLNET
    assert found["control_v11p_sd21_openpose"].base is Base.SD2  # extensions/*/models
    assert found["vae-ft-mse-840000"].kind is ModelKind.VAE
    assert found["ink"].kind is ModelKind.LORA
    # Pickles are listed by the folder they are in, never opened.
    assert (found["legacy"].kind, found["legacy"].format) == (
        ModelKind.CHECKPOINT,
        ModelFormat.PICKLE,
    )
    assert found["taesd_decoder"].kind is ModelKind.TAESD
    assert "stray" not in found  # the venv is not crawled
    assert "4x" not in found  # upscalers are not models of ours


def test_comfyui_tree(tmp_path: Path) -> None:
    comfy = fakes.write_comfyui_tree(tmp_path)
    found = by_name(scan_folders([comfy]).entries)
    assert (found["sdxl_base"].base, found["sdxl_inpaint"].inpaint) == (Base.SDXL, True)
    canny = found["controlnet-canny-sdxl"]
    assert (canny.kind, canny.base, canny.format) == (
        ModelKind.CONTROLNET,
        Base.SDXL,
        ModelFormat.DIFFUSERS,
    )
    assert (found["sd15_depth"].kind, found["sd15_depth"].base) == (ModelKind.CONTROLNET, Base.SD1)
    assert (found["sdxl_vae"].kind, found["sdxl_vae"].base) == (ModelKind.VAE, Base.SDXL)
    assert (found["detail_xl"].kind, found["detail_xl"].base) == (ModelKind.LORA, Base.SDXL)
    assert (found["taesdxl_decoder"].kind, found["taesdxl_decoder"].base) == (
        ModelKind.TAESD,
        Base.SDXL,
    )
    assert "clip_l" not in found  # models/clip holds text encoders: not scanned


def test_hf_cache_location_follows_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert hf_hub_cache() == tmp_path / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hf_hub_cache() == tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    assert hf_hub_cache() == tmp_path / "hub-cache"
    (tmp_path / "hub-cache").mkdir()
    assert default_folders(["~/mine"]) == [tmp_path / "hub-cache", tmp_path / "mine"]
    assert default_folders([], include_hf_cache=False) == []


def _hf_repo(hub: Path, repo: str, source: Path, revision: str = "abc123") -> Path:
    """Lay out ``source`` like huggingface_hub does: blobs + symlinked snapshot + refs/main."""
    folder = hub / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / revision
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        blob = folder / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(file.read_bytes())
        link = snapshot / file.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(revision)
    return snapshot


def test_hf_cache_repos(tmp_path: Path, tiny_models: Path) -> None:
    hub = tmp_path / "hub"
    _hf_repo(hub, "tiny/sd", tiny_models / "tiny-sd-inpaint", revision="old")
    _hf_repo(hub, "tiny/sd", tiny_models / "tiny-sd")  # refs/main now points here
    _hf_repo(hub, "tiny/taesd", tiny_models / "tiny-taesd")
    text_model = tmp_path / "bert"
    text_model.mkdir()
    (text_model / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    _hf_repo(hub, "google/bert", text_model)
    (hub / "datasets--some--data" / "snapshots").mkdir(parents=True)
    found = by_name(scan_folders([hub]).entries)
    assert set(found) == {"tiny/sd", "tiny/taesd", "google/bert"}
    assert found["tiny/sd"].kind is ModelKind.CHECKPOINT and not found["tiny/sd"].inpaint
    assert "/snapshots/abc123" in found["tiny/sd"].path
    assert found["tiny/sd"].size > 10_000  # sizes follow the symlinks into blobs
    assert found["tiny/taesd"].kind is ModelKind.TAESD
    assert "transformers" in found["google/bert"].problem


# ---- bad input: the scan goes on --------------------------------------------------------


def test_missing_folder_and_broken_link(tmp_path: Path) -> None:
    (tmp_path / "dangling.safetensors").symlink_to(tmp_path / "nowhere.safetensors")
    fakes.write_fake_safetensors(tmp_path / "good.safetensors", fakes.sd1_checkpoint())
    found = by_name(scan_folders([tmp_path / "absent", tmp_path]).entries)
    assert found["absent"].problem == "folder does not exist"
    assert "broken link" in found["dangling"].problem
    assert found["good"].usable


def test_symlink_loops(tmp_path: Path) -> None:
    models = tmp_path / "models"
    fakes.write_fake_safetensors(models / "a" / "m.safetensors", fakes.sd1_checkpoint())
    (models / "a" / "back").symlink_to(models)  # a folder loop
    (models / "self.safetensors").symlink_to(models / "self.safetensors")  # a file loop
    entries = scan_folders([models]).entries
    names = [e.display_name for e in entries]
    assert names.count("m") == 1
    loops = [e for e in entries if e.problem and "symlink loop" in e.problem]
    assert {e.display_name for e in loops} == {"back", "self"}


def test_permission_error_on_a_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fakes.write_fake_safetensors(tmp_path / "ok" / "m.safetensors", fakes.sd1_checkpoint())
    fakes.write_fake_safetensors(tmp_path / "locked" / "x.safetensors", fakes.sd1_checkpoint())
    real_scandir = os.scandir

    def scandir(path):  # the tests run as root, where chmod 000 does not lock anything
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = by_name(scan_folders([tmp_path]).entries)
    assert "permission denied" in found["locked"].problem
    assert found["m"].usable


def test_file_disappearing_during_the_scan(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        fakes.write_fake_safetensors(tmp_path / f"{name}.safetensors", fakes.sd1_checkpoint())

    def vanish(progress) -> None:
        if progress.current.endswith("b.safetensors"):
            Path(progress.current).unlink()

    found = by_name(scan_folders([tmp_path], progress=vanish).entries)
    assert found["a"].usable and found["c"].usable
    assert found["b"].format is ModelFormat.MISSING and "disappeared" in found["b"].problem


def test_many_files_and_deep_folders(tmp_path: Path) -> None:
    for i in range(3000):
        folder = tmp_path / f"d{i % 30}" / f"e{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"note{i}.txt").write_bytes(b"x")
    deep = tmp_path.joinpath(*[f"level{i}" for i in range(40)])
    fakes.write_fake_safetensors(tmp_path / "d3" / "m1.safetensors", fakes.sd1_checkpoint())
    fakes.write_fake_safetensors(deep / "too-deep.safetensors", fakes.sd1_checkpoint())
    seen = []
    result = scan_folders([tmp_path], progress=seen.append)
    # The depth limit stops a runaway tree without crashing, and says where it stopped.
    assert [e.display_name for e in result.entries if e.usable] == ["m1"]
    (pruned,) = [e for e in result.entries if not e.usable]
    assert "folders deep" in pruned.problem and pruned.display_name == "level12"
    assert seen and seen[-1].done > 10


def test_cancel_stops_the_scan(tmp_path: Path) -> None:
    for i in range(20):
        fakes.write_fake_safetensors(tmp_path / f"m{i:02}.safetensors", fakes.sd1_checkpoint())
    token = CancelToken()

    def cancel_after_five(progress) -> None:
        if progress.models >= 5:
            token.cancel()

    result = scan_folders([tmp_path], cancel=token, progress=cancel_after_five)
    assert result.cancelled and 5 <= len(result.entries) < 20


# ---- hashes ------------------------------------------------------------------------------


class CountingHasher:
    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, path, cancel=None, on_bytes=None) -> str:
        self.paths.append(os.fspath(path))
        return sha256_file(path, cancel=cancel, on_bytes=on_bytes)


def test_hashes_are_a1111_style_and_cached(tmp_path: Path) -> None:
    models = tmp_path / "models"
    paths = [
        fakes.write_fake_safetensors(models / f"m{i}.safetensors", fakes.sd1_checkpoint())
        for i in range(3)
    ]
    paths[1].write_bytes(paths[1].read_bytes()[:-1] + b"\x01")  # make the files differ
    pipeline = models / "pipe"
    pipeline.mkdir()
    cache_file = tmp_path / "cache" / "library.json"
    hasher = CountingHasher()

    first = scan_folders([models], cache=LibraryCache(cache_file)).entries
    assert all(e.hash is None for e in first)
    updates: list[ModelEntry] = []
    hashed = fill_hashes(
        first, cache=LibraryCache(cache_file), on_entry=updates.append, hash_function=hasher
    )
    assert len(hasher.paths) == 3 and len(updates) == 3
    for entry in hashed:
        digest = hashlib.sha256(Path(entry.path).read_bytes()).hexdigest()
        assert entry.hash == digest[:10] and entry.sha256 == digest

    # A rescan with a fresh cache object (as after a restart) knows every hash: nothing re-hashed.
    again = scan_folders([models], cache=LibraryCache(cache_file)).entries
    assert [e.hash for e in again] == [e.hash for e in hashed]
    fill_hashes(again, cache=LibraryCache(cache_file), hash_function=hasher)
    assert len(hasher.paths) == 3

    # Touching one file (new size or mtime) re-hashes that file only.
    with open(paths[2], "ab") as handle:
        handle.write(b"\x00" * 8)
    changed = scan_folders([models], cache=LibraryCache(cache_file)).entries
    assert [e.hash is None for e in changed] == [False, False, True]
    fill_hashes(changed, cache=LibraryCache(cache_file), hash_function=hasher)
    assert hasher.paths[3:] == [os.path.realpath(paths[2])]


def test_rescan_reads_no_headers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from inference.library import scanner

    fakes.write_fake_safetensors(tmp_path / "m" / "a.safetensors", fakes.sdxl_checkpoint())
    cache_file = tmp_path / "c.json"
    first = scan_folders([tmp_path / "m"], cache=LibraryCache(cache_file)).entries
    reads: list[str] = []
    monkeypatch.setattr(scanner, "read_header", lambda p: reads.append(p) or read_header(p))
    second = scan_folders([tmp_path / "m"], cache=LibraryCache(cache_file)).entries
    assert reads == [] and second == first


def test_corrupt_cache_file_is_ignored(tmp_path: Path) -> None:
    cache_file = tmp_path / "c.json"
    cache_file.write_text("{broken")
    fakes.write_fake_safetensors(tmp_path / "m" / "a.safetensors", fakes.sd1_checkpoint())
    entries = scan_folders([tmp_path / "m"], cache=LibraryCache(cache_file)).entries
    assert entries[0].kind is ModelKind.CHECKPOINT
    assert json.loads(cache_file.read_text())["version"] == 1  # rewritten whole


def test_hashing_cancel(tmp_path: Path) -> None:
    for i in range(3):
        fakes.write_fake_safetensors(tmp_path / f"m{i}.safetensors", fakes.sd1_checkpoint())
    entries = scan_folders([tmp_path]).entries
    token = CancelToken()
    hashed = fill_hashes(entries, cancel=token, on_entry=lambda _e: token.cancel())
    assert [e.hash is not None for e in hashed] == [True, False, False]


# ---- choosing among entries --------------------------------------------------------------


def _entry(kind: ModelKind, base: Base, name: str, fmt: ModelFormat = ModelFormat.SAFETENSORS):
    return ModelEntry(f"/m/{name}", kind, base, display_name=name, format=fmt, size=1)


def test_components_fit_checkpoints_by_base() -> None:
    vae_sd = _entry(ModelKind.VAE, Base.SD1, "vae")
    controlnet_sd1 = _entry(ModelKind.CONTROLNET, Base.SD1, "cn")
    lora_xl = _entry(ModelKind.LORA, Base.SDXL, "lora")
    unknown = _entry(ModelKind.CONTROLNET, Base.UNKNOWN, "cn?")
    assert vae_sd.works_with(Base.SD2) and not vae_sd.works_with(Base.SDXL)  # same latents
    assert controlnet_sd1.works_with(Base.SD1) and not controlnet_sd1.works_with(Base.SD2)
    assert lora_xl.works_with(Base.SDXL) and not lora_xl.works_with(Base.SDXL_REFINER)
    assert unknown.works_with(Base.SDXL) and unknown.works_with(Base.SD1)


def test_find_taesd_for_a_base() -> None:
    from inference.library import find_taesd

    entries = [
        _entry(ModelKind.TAESD, Base.SD1, "taesd_decoder"),
        _entry(ModelKind.TAESD, Base.SD1, "taesd", ModelFormat.DIFFUSERS),
        _entry(ModelKind.TAESD, Base.SDXL, "taesdxl_decoder", ModelFormat.PICKLE),
        _entry(ModelKind.VAE, Base.SD1, "vae"),
    ]
    assert find_taesd(entries, Base.SD2).display_name == "taesd"  # diffusers folder first
    assert find_taesd(entries, Base.SDXL) is None  # only a pickle, not allowed
    assert find_taesd(entries, Base.SDXL, allow_pickle=True).display_name == "taesdxl_decoder"


# ---- hostile files: each one is one listed entry, the rest of the library still works -------


def test_every_malformed_safetensors_is_one_entry_and_the_good_one_still_lists(tmp_path):
    from tests.hostile_cli.generators import BAD_SAFETENSORS, write_models

    write_models(tmp_path)
    found = by_name(scan_folders([tmp_path]).entries)
    assert set(found) == {*BAD_SAFETENSORS, "good_lora"}
    assert found["good_lora"].usable and found["good_lora"].kind is ModelKind.LORA
    for name in BAD_SAFETENSORS:
        assert not found[name].usable and found[name].problem, name
    assert "__metadata__ is a list" in found["metadata_list"].problem
    assert "__metadata__ is a string" in found["metadata_string"].problem
    assert "nested" in found["deep_json"].problem
    assert "digits" in found["huge_int"].problem


@pytest.mark.parametrize(
    "header",
    [
        {"w": {"dtype": "F16", "shape": [True], "data_offsets": [0, 2]}},
        {"w": {"dtype": "F16", "shape": [2**60], "data_offsets": [0, 2]}},
        {"w": {"dtype": 5, "shape": [1], "data_offsets": [0, 2]}},
        {"w": {"dtype": "F16", "shape": [1], "data_offsets": [0]}},
        {"w": {"dtype": "F16", "shape": list(range(1, 12)), "data_offsets": [0, 2]}},
    ],
)
def test_header_values_of_the_wrong_type_are_header_errors(tmp_path, header):
    from tests.hostile_cli.generators import safetensors

    path = tmp_path / "x.safetensors"
    path.write_bytes(safetensors(header, b"\0" * 8))
    with pytest.raises(HeaderError, match="malformed safetensors header entry"):
        read_header(path)


def test_a_bug_on_one_file_becomes_its_problem_not_the_end_of_the_scan(tmp_path, monkeypatch):
    import inference.library.scanner as scanner

    fakes.write_fake_safetensors(tmp_path / "a.safetensors", fakes.sd1_checkpoint())
    fakes.write_fake_safetensors(tmp_path / "b.safetensors", fakes.sd1_checkpoint())
    real = scanner.classify_tensors

    def explode_on_a(shapes, name_hint=""):
        if name_hint == "a.safetensors":
            raise IndexError("tuple index out of range")
        return real(shapes, name_hint)

    monkeypatch.setattr(scanner, "classify_tensors", explode_on_a)
    found = by_name(scan_folders([tmp_path]).entries)
    assert found["a"].problem == "could not be read (tuple index out of range)"
    assert found["b"].usable


def test_pickles_are_listed_with_a_problem_and_never_usable(tmp_path):
    from inference.library.entry import PICKLE_PROBLEM

    (tmp_path / "old.ckpt").write_bytes(b"\x80\x02}q\x00.")
    entry = by_name(scan_folders([tmp_path]).entries)["old"]
    assert entry.format is ModelFormat.PICKLE and entry.problem == PICKLE_PROBLEM
    assert not entry.usable
    allowed = entry.with_pickle_allowed()
    assert allowed.usable and allowed.problem is None
    broken = ModelEntry("/x", ModelKind.CHECKPOINT, problem="truncated")
    assert broken.with_pickle_allowed() is broken


def test_one_sha256_cache_across_processes(tmp_path, monkeypatch):
    """A file hashed in one process is not hashed again in the next while it is unchanged,
    and the cache file merges what two processes wrote."""
    import subprocess
    import sys

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights" * 1000)
    other = tmp_path / "n.safetensors"
    other.write_bytes(b"other" * 1000)
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, inference.library.hashing as h\n"
        "calls = []\n"
        "real = h.sha256_file\n"
        "h.sha256_file = lambda *a, **k: calls.append(a[0]) or real(*a, **k)\n"
        "print(h.file_sha256(sys.argv[1]), len(calls))\n"
    )
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=str(root))

    def run(path: Path) -> tuple[str, int]:
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        digest, calls = out.stdout.split()
        return digest, int(calls)

    assert run(model) == (hashlib.sha256(model.read_bytes()).hexdigest(), 1)
    assert run(other)[1] == 1
    assert run(model)[1] == 0  # cached by the first process, kept when the second saved
    assert run(other)[1] == 0
    model.write_bytes(b"changed" * 1000)
    assert run(model) == (hashlib.sha256(model.read_bytes()).hexdigest(), 1)
    from inference.models import file_sha256

    assert file_sha256(model) == hashlib.sha256(model.read_bytes()).hexdigest()
