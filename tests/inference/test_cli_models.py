"""``impasto models``: table and JSON output, hashes, default folders from settings."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from inference import cli_models
from tests.inference import test_library_fakes as fakes


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_models.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_lists_kind_base_inpaint_and_problems(tmp_path: Path, capsys) -> None:
    webui = fakes.write_a1111_tree(tmp_path)
    (webui / "models" / "Stable-diffusion" / "broken.safetensors").write_bytes(b"\x00" * 3)
    code, out, _ = run(capsys, "--json", "--cache", str(tmp_path / "c.json"), str(webui))
    assert code == 0
    rows = {Path(r["path"]).name: r for r in json.loads(out)}
    inpaint = rows["sd15-inpainting.safetensors"]
    assert (inpaint["kind"], inpaint["base"], inpaint["inpaint"]) == ("checkpoint", "SD1.x", True)
    assert rows["control_sd15_canny.safetensors"]["kind"] == "controlnet"
    assert rows["broken.safetensors"]["kind"] == "unknown"
    assert "too short" in rows["broken.safetensors"]["problem"]
    assert inpaint["hash"] is None  # not hashed unless asked


def test_hash_flag_and_table(tmp_path: Path, capsys) -> None:
    model = fakes.write_fake_safetensors(
        tmp_path / "m" / "tiny-xl.safetensors", fakes.sdxl_checkpoint(inpaint=True)
    )
    cache = str(tmp_path / "c.json")
    code, out, _ = run(capsys, "--hash", "--cache", cache, str(tmp_path / "m"))
    expected = hashlib.sha256(model.read_bytes()).hexdigest()[:10]
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split() == ["KIND", "BASE", "INPAINT", "SIZE", "HASH", "PATH"]
    assert row.split()[:3] == ["checkpoint", "SDXL", "yes"]
    assert expected in row and str(model) in row
    # Known hashes are shown on the next plain listing straight from the cache.
    code, out, _ = run(capsys, "--cache", cache, str(tmp_path / "m"))
    assert expected in out


def test_problems_are_shown_under_the_row(tmp_path: Path, capsys) -> None:
    (tmp_path / "junk.safetensors").write_bytes(b"hello world, not a model")
    code, out, _ = run(capsys, "--cache", str(tmp_path / "c.json"), str(tmp_path))
    assert code == 0
    assert "! not a safetensors file" in out and "1 entries, 0 usable." in out


def test_missing_folder_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "--cache", str(tmp_path / "c.json"), str(tmp_path / "nope"))
    assert code == 2
    assert err.strip() == f"impasto models: no such file or folder: {tmp_path / 'nope'}"


def test_without_folders_uses_settings_and_hf_cache(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.settings import SettingsStore

    hub = tmp_path / "hub"
    fakes.write_fake_safetensors(
        hub / "models--a--lora" / "snapshots" / "r1" / "l.safetensors", fakes.kohya_lora_sdxl()
    )
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    mine = tmp_path / "mine"
    fakes.write_fake_safetensors(mine / "sd2.safetensors", fakes.sd2_checkpoint())
    dropped = fakes.write_fake_safetensors(tmp_path / "else" / "vae.safetensors", fakes.ldm_vae())
    settings = tmp_path / "settings.json"
    SettingsStore(settings).update(model_folders=[str(mine)], extra_model_files=[str(dropped)])
    code, out, _ = run(
        capsys, "--json", "--settings", str(settings), "--cache", str(tmp_path / "c.json")
    )
    assert code == 0
    names = {r["name"]: (r["kind"], r["base"]) for r in json.loads(out)}
    assert names == {
        "a/lora/l": ("lora", "SDXL"),
        "sd2": ("checkpoint", "SD2.x"),
        "vae": ("vae", "unknown"),
    }


def test_dispatch_through_impasto_entry_point(tmp_path: Path, capsys) -> None:
    from app.main import main

    fakes.write_fake_safetensors(tmp_path / "cn.safetensors", fakes.ldm_controlnet(1024))
    assert main(["models", "--json", "--cache", str(tmp_path / "c.json"), str(tmp_path)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["kind"], row["base"]) == ("controlnet", "SD2.x")
