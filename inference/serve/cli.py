"""``impasto serve``: start (or join) a Ray cluster and serve the engine over HTTP.

    impasto serve --models ~/models [--host 0.0.0.0 --port 8470] [--token-file F]
                  [--replicas N | --autoscale MIN..MAX] [--gpus-per-replica G]
                  [--address ray://HEAD:10001 | auto]

Default: one replica per GPU of the cluster (one on a machine without GPUs). The token file is
created (mode 0600) on first start; clients send its content as a bearer token.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import time
from pathlib import Path
from typing import NoReturn

from inference.library import default_cache_path
from inference.serve.auth import default_token_file, load_or_create_token
from inference.serve.wire import Limits

PROG = "impasto serve"
log = logging.getLogger(__name__)


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        raise _UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Serve Impasto's engine on a Ray Serve cluster.")
    p.add_argument("--models", nargs="+", default=[], metavar="FOLDER", help="model folders")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=8470)
    p.add_argument("--token-file", type=Path, default=None, help="bearer token (made if absent)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--replicas", type=int, default=None, help="engine replicas")
    scale.add_argument("--autoscale", default=None, metavar="MIN..MAX", help="e.g. 1..4")
    p.add_argument("--gpus-per-replica", type=float, default=None, help="default 1 with GPUs")
    p.add_argument("--cpus-per-replica", type=float, default=1.0)
    p.add_argument("--address", default=None, help="join a cluster: ray://HEAD:10001 or auto")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--keep-models", type=int, default=1, help="models each replica keeps warm")
    p.add_argument("--max-megapixels", type=float, default=100.0, help="per image")
    p.add_argument("--max-batch", type=int, default=Limits().max_batch)
    p.add_argument("--max-steps", type=int, default=Limits().max_steps)
    p.add_argument(
        "--hash-cache", type=Path, default=None, help="model hash cache (default: the library's)"
    )
    return p


def parse_autoscale(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*\.\.\s*(\d+)\s*", text)
    if match is None:
        raise _UsageError(f"--autoscale must look like MIN..MAX (e.g. 1..4), not {text!r}")
    low, high = int(match.group(1)), int(match.group(2))
    if not 0 <= low <= high or high == 0:
        raise _UsageError("--autoscale needs 0 <= MIN <= MAX and MAX >= 1")
    return low, high


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        autoscale = parse_autoscale(args.autoscale) if args.autoscale else None
        if args.replicas is not None and args.replicas < 1:
            raise _UsageError("--replicas must be at least 1")
        if not 1 <= args.port <= 65535:
            raise _UsageError("--port must be 1..65535")
        missing = [f for f in args.models if not Path(f).expanduser().exists()]
        if missing:
            raise _UsageError(f"model folder not found: {missing[0]}")
    except _UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    try:
        import ray

        from inference.serve import deployment
    except ImportError as error:
        print(
            f"{PROG}: error: Ray Serve is not installed ({error.name}); "
            'install it with: pip install "impasto[serve]"',
            file=sys.stderr,
        )
        return 2
    token_file = args.token_file or default_token_file()
    try:
        token = load_or_create_token(token_file)
    except OSError as error:
        print(f"{PROG}: error: cannot use the token file {token_file}: {error}", file=sys.stderr)
        return 2
    ray.init(address=args.address, include_dashboard=False)
    gpus = float(ray.cluster_resources().get("GPU", 0))
    per_replica = args.gpus_per_replica if args.gpus_per_replica is not None else min(gpus, 1.0)
    replicas = args.replicas or (max(1, int(gpus // per_replica)) if per_replica else 1)
    config = deployment.ServeConfig(
        models=tuple(str(Path(f).expanduser().resolve()) for f in args.models),
        token=token,
        limits=Limits(
            max_pixels=int(args.max_megapixels * 1e6),
            max_batch=args.max_batch,
            max_steps=args.max_steps,
        ),
        replicas=replicas,
        autoscale=autoscale,
        gpus_per_replica=per_replica,
        cpus_per_replica=args.cpus_per_replica,
        device=args.device,
        keep_models=max(1, args.keep_models),
        cache_path=str(args.hash_cache or default_cache_path()),  # hash each file once, ever
    )
    url = deployment.deploy(config, args.host, args.port)
    scale = f"{autoscale[0]}..{autoscale[1]}" if autoscale else str(replicas)
    print(f"Impasto engine at {url}: {scale} replica(s); token in {token_file}", flush=True)
    # a service manager stops us with SIGTERM: undeploy and leave the cluster as on Ctrl+C
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        print(f"{PROG}: stopping", file=sys.stderr)
    finally:
        deployment.undeploy()
        ray.shutdown()
    return 0
