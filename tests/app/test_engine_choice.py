"""Settings › Engine without a server: validation, which engine is built, when it is replaced,
and that the client side never imports Ray."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.engine_choice import engine_factory, engine_key
from app.settings import Settings, SettingsError
from inference.api import InvalidRequestError
from inference.engine import Engine
from inference.remote import RemoteEngine


def test_remote_settings_are_validated():
    settings = Settings().with_changes(
        engine="remote", remote_url=" http://gpu-box:8470 ", remote_token=" abc "
    )
    assert (settings.remote_url, settings.remote_token) == ("http://gpu-box:8470", "abc")
    with pytest.raises(SettingsError) as error:
        Settings().with_changes(engine="cloud", remote_url="gpu-box", remote_token="a b")
    assert set(error.value.problems) == {"engine", "remote_url", "remote_token"}
    loaded, _ = Settings.from_json({"engine": 3, "remote_url": "ftp://x"})
    assert (loaded.engine, loaded.remote_url) == ("local", "")  # bad values: the defaults


def test_the_settings_choose_the_engine_and_only_engine_changes_replace_it():
    local = Settings()
    remote = local.with_changes(engine="remote", remote_url="http://h:1", remote_token="t")
    assert isinstance(engine_factory(local)(), Engine)
    client = engine_factory(remote)()
    assert isinstance(client, RemoteEngine) and client.url == "http://h:1"
    assert engine_key(local) != engine_key(remote)
    assert engine_key(remote) == engine_key(remote.with_changes(mask_opacity=0.2, vae_tiling=True))
    assert engine_key(remote) != engine_key(remote.with_changes(remote_token="other"))
    with pytest.raises(InvalidRequestError, match="no server address"):
        engine_factory(local.with_changes(engine="remote"))()


def test_the_client_side_never_imports_ray():
    code = (
        "import sys, app.engine_choice, inference.remote, inference.cli_generate, app.main\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_settings_file_holding_a_server_token_is_readable_by_its_owner_only(tmp_path):
    import os

    from app.settings import SettingsStore

    store = SettingsStore(tmp_path / "config" / "settings.json")
    store.update(mask_opacity=0.3)
    store.update(engine="remote", remote_url="http://h:1", remote_token="secret")
    assert SettingsStore(store.path).settings.remote_token == "secret"
    if os.name == "posix":
        assert store.path.stat().st_mode & 0o777 == 0o600
        store.update(mask_opacity=0.4)  # later saves keep the mode
        assert store.path.stat().st_mode & 0o777 == 0o600
