"""The remote engine against a real Ray Serve deployment (see conftest.py): same pixels as the
local engine, previews per step, cancel and disconnect, tokens, limits, a killed replica,
two replicas at once. The replica-kill test runs last (it restarts a replica)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from dataclasses import replace
from urllib.parse import urlsplit

import numpy as np
import pytest

from inference.api import (
    Box,
    Cancelled,
    CancelToken,
    InvalidRequestError,
    Mode,
    ModelNotFoundError,
    Request,
)
from inference.remote import ConnectionLost, RemoteEngine, RemoteError
from inference.serve.wire import remote_model_path

MODEL = "tiny-sd-inpaint"


def inpaint_request(steps: int = 4, seed: int = 7, size: int = 64, **changes) -> Request:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[16:48, 8:40] = 255
    request = Request(
        mode=Mode.INPAINT,
        prompt="a red apple",
        seed=seed,
        steps=steps,
        strength=1.0,
        image=image,
        mask=mask,
        crop_box=Box(0, 0, size, size),
        model_path=remote_model_path(MODEL),
    )
    return replace(request, **changes)


def raw_call(server, method: str, path: str, body: bytes = b"", token: str | None = None):
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_remote_inpaint_equals_local_byte_for_byte_with_previews_per_step(server):
    from inference.api import EngineSettings
    from inference.engine import Engine

    engine = Engine(EngineSettings(device="cpu"))
    remote = RemoteEngine(server.url, server.token)
    request = inpaint_request(steps=4)
    previews: list[tuple[int, int, tuple, Box | None]] = []

    def on_preview(step, total, image, box=None, region=None):
        previews.append((step, total, image.shape, box))
        assert region is not None and region.shape == (box.height, box.width)

    result = remote.run(request, on_preview, CancelToken())
    local_request = replace(request, model_path=str(server.models / MODEL))
    local_previews: list[np.ndarray] = []
    local = engine.run(
        local_request, lambda s, t, image, b=None, r=None: local_previews.append(image)
    )

    assert len(result.variants) == len(local.variants) == 1
    ours, theirs = result.variants[0], local.variants[0]
    assert ours.image.dtype == np.uint8 and ours.image.shape == request.image.shape
    assert np.array_equal(ours.image, theirs.image)  # byte for byte
    assert ours.box == theirs.box and ours.seed == theirs.seed
    assert np.array_equal(ours.region, theirs.region)
    assert not np.array_equal(ours.image, request.image)  # it did inpaint
    assert [p[0] for p in previews] == [1, 2, 3, 4]  # one preview per step, in order
    assert all(p[1] == 4 for p in previews)
    assert [p[2] for p in previews] == [image.shape for image in local_previews]
    recipe = result.recipe
    assert recipe.model == MODEL and recipe.seed == 7 and recipe.steps == 4
    assert recipe.model_path == request.model_path  # the client's name, not the server's path
    assert replace(recipe, model_path=None) == replace(local.recipe, model_path=None)


def test_server_lists_its_models_and_gpus(server):
    info = RemoteEngine(server.url, server.token).info()
    assert [(m.name, m.kind, m.family, m.inpaint) for m in info.models] == [
        (MODEL, "checkpoint", "SD1.x", True)
    ]
    assert info.gpus == 0 and info.replicas == "2" and info.nodes == 1
    assert "1 model, 0 GPUs" in info.summary()


def test_a_wrong_or_missing_token_is_refused(server):
    with pytest.raises(RemoteError, match="refused the access token"):
        RemoteEngine(server.url, "not-the-token").info()
    with pytest.raises(RemoteError, match="refused the access token"):
        RemoteEngine(server.url, "not-the-token").run(inpaint_request())
    status, body = raw_call(server, "GET", "/v1/models")  # no header at all
    assert status == 401 and b"models" not in body
    status, _ = raw_call(server, "POST", "/v1/jobs", b"{}", token="")
    assert status == 401
    status, body = raw_call(server, "GET", "/v1/models", token=server.token)
    assert status == 200 and MODEL in json.loads(body)["models"][0]["name"]


def test_oversized_and_malformed_requests_are_refused_and_the_replicas_live_on(server):
    remote = RemoteEngine(server.url, server.token)
    big = inpaint_request(size=256)  # 65536 px > the test server's 16384
    with pytest.raises(InvalidRequestError, match=r"above this server's 0\.02 MP limit"):
        remote.run(big)
    with pytest.raises(InvalidRequestError, match="steps must be between 1 and 200"):
        remote.run(inpaint_request(steps=201))
    with pytest.raises(InvalidRequestError, match="batch_size must be between 1 and 4"):
        remote.run(inpaint_request(batch_size=5))
    status, body = raw_call(server, "POST", "/v1/jobs", b"x" * (2**22 + 1), server.token)
    assert status == 413 and b"MiB limit" in body
    status, body = raw_call(server, "POST", "/v1/jobs", b"{not json", server.token)
    assert status == 400 and b"not JSON" in body
    bad_png = json.dumps({"mode": "inpaint", "image": "aGVsbG8=", "mask": "aGVsbG8="}).encode()
    status, body = raw_call(server, "POST", "/v1/jobs", bad_png, server.token)
    assert status == 400 and b"not a readable PNG" in body
    status, body = raw_call(server, "POST", "/v1/jobs", b'{"mode": "x", "evil": 1}', server.token)
    assert status == 400 and b"unknown request field(s): evil" in body
    with pytest.raises(ModelNotFoundError, match="no checkpoint named 'sd-missing'"):
        remote.run(inpaint_request(model_path=remote_model_path("sd-missing", "abcdef1234")))
    assert len(remote.run(inpaint_request(steps=1)).variants) == 1  # still serving


def test_cancel_and_disconnect_stop_the_replica_within_one_step(server):
    remote = RemoteEngine(server.url, server.token)
    token = CancelToken()
    steps: list[int] = []

    def cancel_at_second(step, total, image, box=None, region=None):
        steps.append(step)
        if step == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        remote.run(inpaint_request(steps=200), cancel_at_second, token)
    assert steps[:2] == [1, 2] and len(steps) <= 3  # at most the preview already on its way

    # a client that goes away without a word (its process died): close the stream mid-job
    events = remote.events(inpaint_request(steps=200, seed=3))
    for event in events:
        if event["type"] == "preview" and event["step"] == 2:
            break
    events.close()
    # Both replicas are free again at once: the next two jobs start on them together, each
    # telling how its replica's last cancelled job ended (previews after the cancel, and ms).
    started = _run_two_jobs_concurrently(server)
    reports = [event["last_cancel"] for event in started if event["last_cancel"]]
    assert reports, "no replica reported a cancelled job"
    for report in reports:
        # within one step: the step running when the cancel came may still finish (and send its
        # preview), no step after it starts
        assert report["previews"] <= 1, report
        assert report["stopped_ms"] < 10_000, report


def _run_two_jobs_concurrently(server) -> list[dict]:
    started: list[dict] = []
    spans: dict[str, tuple[float, float]] = {}
    errors: list[BaseException] = []

    def client(seed: int) -> None:
        remote = RemoteEngine(server.url, server.token)
        begin = None
        try:
            for event in remote.events(inpaint_request(steps=12, seed=seed)):
                if event["type"] == "started":
                    started.append(event)
                    begin = time.monotonic()
                if event["type"] == "error":
                    raise AssertionError(event)
            spans[str(seed)] = (begin or 0.0, time.monotonic())
        except BaseException as error:  # reported on the test thread
            errors.append(error)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in (11, 12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len(started) == 2 and len(spans) == 2
    assert started[0]["replica"] != started[1]["replica"]  # one job on each replica
    (a0, a1), (b0, b1) = spans.values()
    assert a0 < b1 and b0 < a1  # they ran at the same time
    return started


def test_two_clients_jobs_run_concurrently_on_two_replicas(server):
    started = _run_two_jobs_concurrently(server)
    assert {event["pid"] for event in started} != {os.getpid()}


def test_a_server_that_is_down_is_reported_at_once():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nobody listens
    remote = RemoteEngine(f"http://127.0.0.1:{port}", "token", connect_timeout=2.0)
    begin = time.monotonic()
    with pytest.raises(RemoteError, match=r"cannot reach the Impasto server .*connection refused"):
        remote.run(inpaint_request())
    assert time.monotonic() - begin < 2.0


def test_jobs_beyond_the_replicas_wait_and_are_told_their_queue_position(server):
    streams = [
        RemoteEngine(server.url, server.token).events(inpaint_request(steps=200, seed=20 + i))
        for i in range(4)
    ]
    try:
        for stream in streams[:2]:  # both replicas busy
            assert any(event["type"] == "started" for event in stream)
        waiting = []
        for stream in streams[2:]:
            event = next(e for e in stream if e["type"] == "queued")
            waiting.append(event["position"])
        assert waiting == [0, 1]
        for stream in streams[:2]:
            stream.close()  # cancels them: the waiting jobs move up and start
        assert any(event["type"] == "started" for event in streams[3])
    finally:
        for stream in streams:
            stream.close()


def test_zz_killing_the_replica_mid_job_fails_that_job_clearly_and_the_next_succeeds(server):
    remote = RemoteEngine(server.url, server.token)

    victim, killed = 0, ""

    def kill_at_second(step, total, image, box=None, region=None):
        nonlocal victim, killed
        if step == 2:
            victim, killed = int(remote.last_worker["pid"]), remote.last_worker["replica"]
            os.kill(victim, signal.SIGKILL)

    with pytest.raises(ConnectionLost, match=r"stopped unexpectedly .* try again"):
        remote.run(inpaint_request(steps=200, seed=5), kill_at_second)
    result = remote.run(inpaint_request(steps=2, seed=6))  # the other replica (or the restarted)
    assert len(result.variants) == 1 and result.variants[0].image.shape == (64, 64, 3)
    # Ray Serve replaces the dead replica: two replicas serve again, neither the killed one
    deadline = time.monotonic() + 120
    while True:
        try:
            started = _run_two_jobs_concurrently(server)
            replicas = {event["replica"] for event in started}
            if killed not in replicas:
                break
        except AssertionError:  # still one replica: both jobs went to it
            pass
        assert time.monotonic() < deadline, "the killed replica was not replaced"
        time.sleep(1)
    assert victim not in {event["pid"] for event in started}
