"""emlab-worker: serves a transformers model with emlab's worker protocol (docs/worker-protocol.md)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from . import __version__


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="emlab-worker", description=__doc__)
    ap.add_argument("--model", required=True, help="HF model id or directory")
    ap.add_argument("--adapter", default=None, help="a PEFT adapter directory, merged into the served weights")
    ap.add_argument("--device", default="auto", help="auto (cuda when available) | cpu | cuda | cuda:N")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"], help="auto: float32 on the CPU, bfloat16 on CUDA")
    ap.add_argument("--device-map", default=None, choices=["auto"], help="auto: spread the model over the GPUs (accelerate)")
    ap.add_argument("--attn", default="auto", choices=["auto", "eager", "sdpa"], help="attention implementation; auto: eager on the CPU (exact parity), sdpa on CUDA")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: reach it through an SSH tunnel)")
    ap.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    ap.add_argument("--api-key", default=None, help="require Authorization: Bearer KEY (default: $EMLAB_WORKER_API_KEY)")
    ap.add_argument("--state-dir", default="./emlab-worker-state", help="training jobs, checkpoints and adapters")
    ap.add_argument("--served-name", default=None, help="the model id the worker answers to (default: --model)")
    ap.add_argument("--version", action="version", version=f"emlab-worker {__version__}")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from .jobs import JobManager
    from .models import LoadOptions, load_served
    from .server import Worker, log, make_server

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"emlab-worker: --device {args.device}: CUDA is not available here", file=sys.stderr)
        return 2
    opts = LoadOptions(args.model, args.adapter, args.device, args.dtype, args.device_map, args.attn)
    log(f"emlab-worker {__version__}: loading {args.model} ({opts.resolved_device()}, {opts.resolved_dtype()}, attn {opts.resolved_attn()})")
    served = load_served(opts, args.served_name)
    jobs = JobManager(os.path.abspath(args.state_dir), served.name, opts, log)
    api_key = args.api_key or os.environ.get("EMLAB_WORKER_API_KEY") or None
    server = make_server(Worker(served, jobs, api_key), args.host, args.port)
    host, port = server.server_address[:2]
    print(f"emlab-worker listening on http://{host}:{port}", flush=True)

    def stop(_sig: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
