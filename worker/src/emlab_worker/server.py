"""The HTTP server (stdlib ThreadingHTTPServer): routing, auth, JSON and OpenAI-style errors.

Requests that run the model or its tokenizer hold one lock (one model, safe on one GPU);
training jobs run on their own model copy in a background thread.
"""

from __future__ import annotations

import hmac
import json
import secrets
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import activations, chat, wire
from .errors import ApiError, bad_request, not_found, server_error, unauthorized
from .generate import SamplingParams, generate
from .hooks import all_hook_names, check_hook_name, parse_edits
from .jobs import JobManager
from .models import ServedModel, describe_dtype, versions

CAPABILITIES = ["activations", "steering", "finetune", "logprobs", "seed", "n"]
MAX_BODY = 1 << 30
CHAT_KEYS = {
    "model", "messages", "n", "temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "stop",
    "logprobs", "top_logprobs", "stream", "emlab",
    # Accepted and without effect on a local model.
    "user", "metadata", "store",
}
# OpenAI options the worker does not implement: refused unless left at their defaults.
UNSUPPORTED_DEFAULTS = {"presence_penalty": 0, "frequency_penalty": 0, "logit_bias": {}, "tools": [], "response_format": {"type": "text"}}


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Worker:
    def __init__(self, served: ServedModel, jobs: JobManager, api_key: str | None, log: Callable[[str], None] = log):
        self.log = log
        self.served = served
        self.jobs = jobs
        self.api_key = api_key
        self.model_lock = threading.Lock()

    # ---- helpers -------------------------------------------------------------------------
    def check_auth(self, header: str | None) -> None:
        if not self.api_key:
            return
        given = header[len("Bearer ") :] if header and header.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode("utf-8"), self.api_key.encode("utf-8")):
            raise unauthorized()

    def resolve_model(self, name: Any, required: bool) -> tuple[str, str | None, str | None]:
        """(name, adapter name, adapter dir): the served model or a succeeded job's NAME:ft:ID."""
        if name is None:
            if required:
                raise bad_request("model: required", "model")
            return self.served.name, None, None
        name = wire.string(name, "model")
        if name == self.served.name:
            return name, None, None
        base, sep, job_id = name.rpartition(":ft:")
        if sep and base == self.served.name:
            try:
                job = self.jobs.get(job_id)
            except ApiError:
                job = None
            if job is not None and job["status"] == "succeeded":
                return name, job_id, self.jobs.adapter_dir(job_id)
        raise not_found(f"model {name!r} is not served here (served: {self.served.name!r} and its succeeded jobs' NAME:ft:ID)", "model")

    def edits(self, value: Any, path: str):
        return parse_edits(value if value is not None else [], path, self.served.n_layers, self.served.d_model)

    # ---- endpoints -----------------------------------------------------------------------
    def health(self) -> dict:
        return {"status": "ok", "model": self.served.name}

    def models(self) -> dict:
        ids = [self.served.name] + [j["fine_tuned_model"] for j in self.jobs.succeeded() if j["fine_tuned_model"]]
        return {"object": "list", "data": [{"id": i, "object": "model", "owned_by": "emlab-worker"} for i in ids]}

    def info(self) -> dict:
        s = self.served
        return {
            "model": s.name,
            "model_type": s.config.model_type,
            "n_layers": s.n_layers,
            "d_model": s.d_model,
            "vocab_size": s.vocab_size,
            "max_positions": s.max_positions,
            "dtype": describe_dtype(s.dtype),
            "device": str(s.device),
            "adapter": s.opts.adapter,
            "eos_token_ids": s.eos_token_ids,
            "assistant_header_tokens": s.assistant_header_tokens,
            "hook_names": all_hook_names(s.n_layers),
            "capabilities": CAPABILITIES,
            "versions": versions(),
        }

    def chat_completions(self, body: dict) -> dict:
        wire.only_keys(body, CHAT_KEYS | set(UNSUPPORTED_DEFAULTS), "")
        for key, default in UNSUPPORTED_DEFAULTS.items():
            if key in body and body[key] not in (None, default):
                raise bad_request(f"{key}: not supported by the worker", key)
        if body.get("stream"):
            raise bad_request("stream: streaming is not supported; send stream: false", "stream")
        name, adapter, adapter_dir = self.resolve_model(body.get("model"), required=True)
        msgs = wire.messages(wire.get(body, "messages", ""), "messages")
        n = wire.integer(wire.get(body, "n", "", 1), "n", 1, 256)
        temperature = wire.number(wire.get(body, "temperature", "", 1), "temperature", 0, 100)
        top_p = wire.number(wire.get(body, "top_p", "", 1), "top_p", 0, 1)
        if top_p <= 0:
            raise bad_request("top_p: must be > 0", "top_p")
        max_key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        max_tokens = wire.integer(wire.get(body, max_key, "", 256), max_key, 1)
        seed = body.get("seed")
        seed = None if seed is None else wire.integer(seed, "seed")
        stop = body.get("stop")
        stop = [] if stop is None else [stop] if isinstance(stop, str) else wire.array(stop, "stop")
        stop = [wire.string(s, f"stop.{i}", nonempty=True) for i, s in enumerate(stop)]
        want_logprobs = wire.boolean(wire.get(body, "logprobs", "", False), "logprobs")
        top_logprobs = wire.integer(wire.get(body, "top_logprobs", "", 0), "top_logprobs", 0, 20)
        if top_logprobs and not want_logprobs:
            raise bad_request("top_logprobs: needs logprobs: true", "top_logprobs")
        ext = wire.obj(wire.get(body, "emlab", "", {}), "emlab")
        wire.only_keys(ext, {"edits", "sample_seeds", "top_k"}, "emlab")
        edits = self.edits(ext.get("edits"), "emlab.edits")
        top_k = wire.integer(wire.get(ext, "top_k", "emlab", 0), "emlab.top_k", 0)
        sample_seeds = ext.get("sample_seeds")
        if sample_seeds is not None:
            sample_seeds = [wire.integer(s, f"emlab.sample_seeds.{i}") for i, s in enumerate(wire.array(sample_seeds, "emlab.sample_seeds"))]
            if len(sample_seeds) != n:
                raise bad_request(f"emlab.sample_seeds: {len(sample_seeds)} seeds for n = {n}", "emlab.sample_seeds")
            seeds: list[int | None] = list(sample_seeds)
        elif seed is not None:
            seeds = [seed + i for i in range(n)]
        else:
            seeds = [None] * n
        params = SamplingParams(n, temperature, top_p, top_k, max_tokens, seeds, stop, want_logprobs, top_logprobs)
        s = self.served
        with self.model_lock:
            try:
                prompt = chat.encode(s.tokenizer, chat.render(s.tokenizer, msgs, True))
            except chat.ChatError as e:
                raise bad_request(f"messages: {e}", "messages") from e
            if len(prompt) >= s.max_positions:
                raise bad_request(f"messages: the prompt has {len(prompt)} tokens, the model's context is {s.max_positions}", "messages")
            with s.variant(adapter, adapter_dir) as model:
                completions = generate(model, s.tokenizer, prompt, params, edits, s.eos_token_ids, s.max_positions, s.device)
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": c.text},
                "finish_reason": c.finish_reason,
                "logprobs": {"content": c.logprobs} if c.logprobs is not None else None,
            }
            for i, c in enumerate(completions)
        ]
        used = sum(c.generated for c in completions)
        return {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": choices,
            "usage": {"prompt_tokens": len(prompt), "completion_tokens": used, "total_tokens": len(prompt) + used},
        }

    def activations(self, body: dict) -> bytes:
        wire.only_keys(body, {"model", "hooks", "inputs", "reduce", "edits"}, "")
        _, adapter, adapter_dir = self.resolve_model(body.get("model"), required=False)
        s = self.served
        hooks = [check_hook_name(h, f"hooks.{i}", s.n_layers) for i, h in enumerate(wire.array(wire.get(body, "hooks", ""), "hooks", nonempty=True))]
        if len(set(hooks)) != len(hooks):
            raise bad_request("hooks: a hook name is listed twice", "hooks")
        reduce = wire.get(body, "reduce", "", "all")
        if reduce not in activations.REDUCTIONS:
            raise bad_request(f"reduce: must be one of {', '.join(activations.REDUCTIONS)}, got {reduce!r}", "reduce")
        edits = self.edits(body.get("edits"), "edits")
        with self.model_lock:
            inputs = activations.parse_inputs(wire.get(body, "inputs", ""), "inputs", s.tokenizer, s.vocab_size, s.max_positions, True)
            if reduce.startswith("answer_"):
                for i, inp in enumerate(inputs):
                    if not inp.has_answer:
                        raise bad_request(f"inputs.{i}: reduce {reduce} needs a {{messages, answer}} input", f"inputs.{i}")
            with s.variant(adapter, adapter_dir) as model:
                return activations.read_activations(model, inputs, hooks, reduce, edits, self.pad_id(), s.device)

    def logits(self, body: dict) -> bytes:
        wire.only_keys(body, {"model", "inputs", "edits", "positions"}, "")
        _, adapter, adapter_dir = self.resolve_model(body.get("model"), required=False)
        s = self.served
        positions = wire.get(body, "positions", "", "all")
        if positions not in ("all", "last"):
            raise bad_request(f'positions: must be "all" or "last", got {positions!r}', "positions")
        edits = self.edits(body.get("edits"), "edits")
        inputs = activations.parse_inputs(wire.get(body, "inputs", ""), "inputs", s.tokenizer, s.vocab_size, s.max_positions, False)
        with self.model_lock, s.variant(adapter, adapter_dir) as model:
            return activations.read_logits(model, inputs, positions, edits, self.pad_id(), s.device)

    def tokenize(self, body: dict) -> dict:
        s = self.served
        if "text" in body:
            wire.only_keys(body, {"text", "model"}, "")
            text = wire.string(body["text"], "text")
        else:
            wire.only_keys(body, {"messages", "add_generation_prompt", "model"}, "")
            msgs = wire.messages(wire.get(body, "messages", ""), "messages")
            gen = wire.boolean(wire.get(body, "add_generation_prompt", "", False), "add_generation_prompt")
            with self.model_lock:
                try:
                    text = chat.render(s.tokenizer, msgs, gen)
                except chat.ChatError as e:
                    raise bad_request(f"messages: {e}", "messages") from e
        with self.model_lock:
            ids = chat.encode(s.tokenizer, text)
        return {"token_ids": ids, "text": text}

    def create_job(self, body: dict) -> dict:
        return self.jobs.create(body, self.served.tokenizer, self.served.n_layers, self.model_lock)

    def pad_id(self) -> int:
        pad = self.served.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0


def make_handler(worker: Worker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "emlab-worker"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass  # one line per request is logged in _handle, without the query or headers

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

        def _raw_body(self) -> bytes:
            if self._raw is None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = 0
                if length > MAX_BODY:
                    self.close_connection = True
                    raise bad_request(f"request body too large ({length} bytes)")
                self._raw = self.rfile.read(length) if length > 0 else b""
            return self._raw

        def _body(self) -> dict:
            raw = self._raw_body()
            try:
                value = json.loads(raw or b"null")
            except (ValueError, UnicodeDecodeError) as e:
                raise bad_request(f"malformed JSON body: {e}") from e
            return wire.obj(value, "")

        def _route(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
            w = worker
            if path == "/health" and method == "GET":
                return 200, w.health()
            w.check_auth(self.headers.get("Authorization"))
            if method == "GET":
                if path == "/v1/models":
                    return 200, w.models()
                if path == "/v1/emlab/info":
                    return 200, w.info()
                if path == "/v1/emlab/jobs":
                    tag = query.get("client_tag", [None])[0]
                    return 200, {"data": w.jobs.by_tag(tag) if tag is not None else w.jobs.all()}
                parts = path.split("/")
                if len(parts) == 5 and path.startswith("/v1/emlab/jobs/"):
                    return 200, w.jobs.get(parts[4])
                if len(parts) == 6 and path.startswith("/v1/emlab/jobs/") and parts[5] == "adapter":
                    return 200, w.jobs.adapter_files(parts[4])
            if method == "POST":
                if path == "/v1/chat/completions":
                    return 200, w.chat_completions(self._body())
                if path == "/v1/emlab/activations":
                    return 200, w.activations(self._body())
                if path == "/v1/emlab/logits":
                    return 200, w.logits(self._body())
                if path == "/v1/emlab/tokenize":
                    return 200, w.tokenize(self._body())
                if path == "/v1/emlab/jobs":
                    return 200, w.create_job(self._body())
                parts = path.split("/")
                if len(parts) == 6 and path.startswith("/v1/emlab/jobs/") and parts[5] == "cancel":
                    return 200, w.jobs.cancel(parts[4])
            raise not_found(f"no endpoint {method} {path}")

        def _handle(self, method: str) -> None:
            t0 = time.perf_counter()
            self._raw: bytes | None = None
            url = urlsplit(self.path)
            try:
                status, result = self._route(method, url.path, parse_qs(url.query))
            except ApiError as e:
                status, result = e.status, e.body()
            except Exception as e:  # noqa: BLE001 - any failure is a 500 with its message
                worker.log(f"{method} {url.path}: {traceback.format_exc()}")
                err = server_error(f"{type(e).__name__}: {e}")
                status, result = err.status, err.body()
            try:
                self._raw_body()  # a keep-alive connection must not read an unread body as the next request
            except ApiError:
                pass
            if isinstance(result, bytes):
                data, ctype = result, "application/octet-stream"
            else:
                data, ctype = json.dumps(result).encode("utf-8"), "application/json"
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            worker.log(f"{method} {url.path} {status} {(time.perf_counter() - t0) * 1000:.0f}ms")

    return Handler


def make_server(worker: Worker, host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(worker))
    server.daemon_threads = True
    return server
