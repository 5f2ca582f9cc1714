"""Settings: round-trip, validation, fallbacks, atomic writes, change notification."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from app.settings import Settings, SettingsError, SettingsStore
from inference.api import EngineSettings


def test_defaults_when_no_file(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    assert store.settings == Settings()
    assert store.settings.autosave_minutes == 5
    assert store.settings.max_image_pixels == 100_000_000
    assert not (tmp_path / "settings.json").exists()  # nothing written until something changes


def test_round_trip_every_field(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "settings.json"
    changed = Settings().with_changes(
        model_folders=["/models/a", "/models/b"],
        include_hf_cache=False,
        extra_model_files=["/x/dropped.safetensors"],
        checkpoint="/models/a/sd15.safetensors",
        vae="/models/vae.safetensors",
        allow_pickle=True,
        device="cuda:1",
        precision="fp16",
        memory_mode="model_offload",
        vae_tiling=True,
        attention_slicing=True,
        preview_method="taesd",
        preview_every=3,
        taesd_path="/models/taesd",
        autosave_minutes=10,
        mask_color="#00FF80",
        mask_opacity=0.25,
        max_image_megapixels=64,
        default_sampler="dpm++ 2m karras",
        default_steps=30,
        default_guidance=5.5,
        recent_prompts=[["a cat", "blurry"], ("a dog", "")],
    )
    SettingsStore(path).update(changed)
    reloaded = SettingsStore(path).settings
    assert reloaded == changed
    assert reloaded.mask_color == "#00ff80" and reloaded.default_sampler == "DPM++ 2M Karras"
    assert reloaded.model_folders == ("/models/a", "/models/b")
    assert json.loads(path.read_text())["device"] == "cuda:1"
    assert reloaded.recent_prompts == (("a cat", "blurry"), ("a dog", ""))


def test_engine_settings(tmp_path: Path) -> None:
    settings = Settings().with_changes(
        device="mps",
        precision="fp32",
        memory_mode="sequential_offload",
        vae_tiling=True,
        preview_method="off",
        preview_every=2,
        allow_pickle=True,
    )
    assert settings.engine_settings() == EngineSettings(
        device="mps",
        precision="fp32",
        memory_mode="sequential_offload",
        vae_tiling=True,
        preview_method="off",
        preview_every=2,
        taesd_path=None,
        allow_pickle=True,
    )
    assert Settings(taesd_path="/t").engine_settings().taesd_path == "/t"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("device", "cuda:x"),
        ("device", "tpu"),
        ("precision", "fp8"),
        ("memory_mode", "swap"),
        ("preview_method", "vae"),
        ("preview_every", 0),
        ("autosave_minutes", -1),
        ("autosave_minutes", 2.5),
        ("mask_color", "red"),
        ("mask_opacity", 1.5),
        ("max_image_megapixels", 0),
        ("default_sampler", "Heun++"),
        ("default_steps", "20"),
        ("default_guidance", float("nan")),
        ("vae_tiling", "yes"),
        ("model_folders", "/just/a/string"),
        ("recent_prompts", "a cat"),
        ("recent_prompts", [["a cat"]]),
        ("recent_prompts", [["a cat", None]]),
        ("recent_prompts", [["a", "b", "c"]]),
    ],
)
def test_invalid_values_are_refused_by_name(name: str, value: object) -> None:
    with pytest.raises(SettingsError) as info:
        Settings().with_changes(**{name: value})
    assert list(info.value.problems) == [name]


def test_invalid_saved_values_fall_back_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {"device": "quantum", "default_steps": 25, "mask_opacity": "half", "future_key": [1, 2]}
        )
    )
    with caplog.at_level(logging.WARNING):
        store = SettingsStore(path)
    assert store.settings.device == "auto" and store.settings.mask_opacity == 0.5
    assert store.settings.default_steps == 25
    assert "device" in caplog.text and "mask_opacity" in caplog.text and "future_key" in caplog.text
    store.update(autosave_minutes=7)
    saved = json.loads(path.read_text())
    assert saved["future_key"] == [1, 2]  # a newer version's keys survive an older one's save
    assert saved["autosave_minutes"] == 7 and saved["device"] == "auto"


def test_unreadable_file_is_kept_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{ this is not json")
    with caplog.at_level(logging.WARNING):
        store = SettingsStore(path)
    assert store.settings == Settings() and "unreadable" in caplog.text
    assert (tmp_path / "settings.json.bad").read_text() == "{ this is not json"


def test_atomic_write_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    path = tmp_path / "settings.json"
    store = SettingsStore(path)
    store.update(default_steps=12)
    before = path.read_text()

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        store.update(default_steps=13)
    assert path.read_text() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]
    assert store.settings.default_steps == 12  # in memory too


def test_listeners_hear_what_changed(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "s.json")
    heard: list[tuple[Settings, frozenset[str]]] = []
    unsubscribe = store.subscribe(lambda s, changed: heard.append((s, changed)))
    store.update(model_folders=["/m"], vae_tiling=True)
    store.update(vae_tiling=True)  # no change, no call
    assert len(heard) == 1
    assert heard[0][1] == {"model_folders", "vae_tiling"}
    assert heard[0][0].model_folders == ("/m",)
    unsubscribe()
    store.update(vae_tiling=False)
    assert len(heard) == 1


def test_update_refuses_invalid_changes_and_keeps_old(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "s.json")
    with pytest.raises(SettingsError, match="device"):
        store.update(device="gpu please", default_steps=10)
    assert store.settings == Settings()


def test_library_cli_reads_the_same_folders(tmp_path: Path) -> None:
    from inference.library import configured_folders

    path = tmp_path / "s.json"
    SettingsStore(path).update(
        model_folders=["/a"], include_hf_cache=False, extra_model_files=["/f.safetensors"]
    )
    assert configured_folders(path) == ([Path("/a")], False, [Path("/f.safetensors")])


def test_recent_prompts_are_tidied_and_capped() -> None:
    pairs = [[f"prompt {i}", "neg"] for i in range(30)]
    settings = Settings().with_changes(
        recent_prompts=[["  ", "only a negative"], ["a", "x"], ["a", "x"], ["a", "y"], *pairs]
    )
    assert settings.recent_prompts[:3] == (("a", "x"), ("a", "y"), ("prompt 0", "neg"))
    assert len(settings.recent_prompts) == 20  # newest first: the oldest fall off


def test_a_broken_saved_history_falls_back_to_empty(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"recent_prompts": [["a", 3]], "default_steps": 9}))
    store = SettingsStore(path)
    assert store.settings.recent_prompts == () and store.settings.default_steps == 9


def test_update_soon_tells_listeners_at_once_and_writes_off_the_calling_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import app.settings as settings_module

    writers: list[str] = []
    real_write = settings_module.atomic_write_text

    def recording_write(path, text):  # type: ignore[no-untyped-def]
        writers.append(threading.current_thread().name)
        return real_write(path, text)

    monkeypatch.setattr(settings_module, "atomic_write_text", recording_write)
    store = SettingsStore(tmp_path / "settings.json")
    heard: list[frozenset[str]] = []
    store.subscribe(lambda _settings, changed: heard.append(changed))
    store.update_soon(recent_prompts=[["a boat", ""]])
    assert store.settings.recent_prompts == (("a boat", ""),)
    assert heard == [frozenset({"recent_prompts"})]
    store.update_soon(recent_prompts=[["a harbour", "fog"], ["a boat", ""]])
    store.flush()
    assert writers and threading.current_thread().name not in writers
    reread = SettingsStore(tmp_path / "settings.json")
    assert reread.settings.recent_prompts == (("a harbour", "fog"), ("a boat", ""))
    store.update(default_steps=31)  # a plain update after it keeps both
    assert SettingsStore(tmp_path / "settings.json").settings.recent_prompts[0] == (
        "a harbour",
        "fog",
    )
