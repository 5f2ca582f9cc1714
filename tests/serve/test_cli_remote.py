"""``impasto generate --server URL --token-file F`` against the real deployment."""

from __future__ import annotations

import numpy as np
from PIL import Image

from inference import cli_generate

from .conftest import TOKEN


def _inputs(tmp_path):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    mask = np.zeros((64, 64), np.uint8)
    mask[20:44, 20:44] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    return ["--image", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png")], token


def test_generate_runs_on_the_server_and_writes_the_same_png_as_locally(server, tmp_path, capsys):
    images, token = _inputs(tmp_path)
    common = ["--prompt", "a pear", "--steps", "2", "--seed", "3", "--quiet", *images]
    remote_out, local_out = tmp_path / "remote.png", tmp_path / "local.png"
    remote = ["--model", "tiny-sd-inpaint", "--server", server.url, "--token-file", str(token)]
    code = cli_generate.main([*common, "--out", str(remote_out), *remote])
    assert code == 0, capsys.readouterr().err
    model = server.models / "tiny-sd-inpaint"
    assert cli_generate.main([*common, "--out", str(local_out), "--model", str(model)]) == 0
    with Image.open(remote_out) as remote, Image.open(local_out) as local:
        assert np.array_equal(np.asarray(remote), np.asarray(local))
        assert "Model: tiny-sd-inpaint" in remote.info["parameters"]


def test_generate_with_a_bad_token_file_or_a_down_server_says_so_in_one_line(
    server, tmp_path, capsys
):
    images, token = _inputs(tmp_path)
    args = ["--prompt", "x", "--out", str(tmp_path / "o.png"), "--model", "tiny-sd-inpaint"]
    code = cli_generate.main(
        [*args, *images, "--server", server.url, "--token-file", str(tmp_path / "nope")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "token file not found" in err
    code = cli_generate.main(
        [*args, *images, "--server", "http://127.0.0.1:9", "--token-file", str(token)]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0 and "cannot reach the Impasto server" in err
    assert not (tmp_path / "o.png").exists()
