#!/usr/bin/env python3
"""Smoke test of the worker on tiny random checkpoints: every endpoint over HTTP, and checks that
need no engine (exits non-zero on the first failure).

  .venv-torch/bin/python worker/tests/smoke.py [MODELS_DIR]

MODELS_DIR (default /tmp/worker-models) holds scripts/reference/greedy_continuations.py's
checkpoints and its JSON (greedy.json); both are made when absent. Checks:
  - greedy decoding without edits gives exactly model.generate's token ids (every family);
  - hook reads agree with HF's hidden states and with each other (resid_mid = resid_pre +
    attn_out, ...); edits do what they say (embed edit = inputs_embeds edit, positions);
  - greedy generation under an edit equals a cache-free greedy loop under the same edit;
  - sampling seeds, stop strings, logprobs against /v1/emlab/logits, answer positions, errors;
  - a training job killed mid-way (SIGKILL) and resumed by a restarted worker ends with the
    same adapter (1e-6) as an uninterrupted run of the same job.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SRC = os.path.join(REPO, "worker", "src")
sys.path.insert(0, SRC)

import torch  # noqa: E402
from safetensors.torch import load as load_safetensors  # noqa: E402

from emlab_worker import chat  # noqa: E402
from emlab_worker.generate import SamplingParams, generate  # noqa: E402
from emlab_worker.hooks import parse_edits  # noqa: E402
from emlab_worker.jobs import JobManager  # noqa: E402
from emlab_worker.models import LoadOptions, load_served  # noqa: E402
from emlab_worker.server import Worker, make_server  # noqa: E402

KEY = "smoke-key"
T0 = time.time()
CHECKS = 0


def check(cond: bool, what: str) -> None:
    global CHECKS
    CHECKS += 1
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)


def models_dir() -> tuple[str, dict]:
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/worker-models"
    ref = os.path.join(out, "greedy.json")
    if not os.path.isfile(ref):
        os.makedirs(out, exist_ok=True)
        script = os.path.join(REPO, "scripts", "reference", "greedy_continuations.py")
        data = subprocess.run([sys.executable, script, out], check=True, capture_output=True).stdout
        with open(ref, "wb") as f:
            f.write(data)
    with open(ref, encoding="utf-8") as f:
        return out, json.load(f)


class Client:
    def __init__(self, base: str, key: str | None = KEY):
        self.base = base
        self.key = key

    def call(self, method: str, path: str, body: object = None, raw: bytes | None = None, key: str | None = "default"):
        """(status, parsed JSON or bytes)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        k = self.key if key == "default" else key
        if k:
            req.add_header("Authorization", f"Bearer {k}")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, payload, ctype = r.status, r.read(), r.headers.get("Content-Type")
        except urllib.error.HTTPError as e:
            status, payload, ctype = e.code, e.read(), e.headers.get("Content-Type")
        return status, (json.loads(payload) if ctype == "application/json" else payload)

    def ok(self, method: str, path: str, body: object = None):
        status, out = self.call(method, path, body)
        check(status == 200, f"{method} {path}: status {status}: {out}")
        return out

    def error(self, status: int, param: str | None, method: str, path: str, body: object = None, **kw):
        got, out = self.call(method, path, body, **kw)
        check(got == status, f"{method} {path} {json.dumps(body)[:120]}: expected {status}, got {got}: {out}")
        check(isinstance(out, dict) and set(out["error"]) == {"message", "type", "param", "code"}, f"error body: {out}")
        if param is not None:
            check(out["error"]["param"] == param, f"expected param {param}, got {out['error']}")
        return out["error"]


def serve_in_process(model_dir: str, state: str) -> tuple[Client, Worker, object]:
    served = load_served(LoadOptions(model_dir), "tiny")
    jobs = JobManager(state, served.name, served.opts, lambda line: None)
    worker = Worker(served, jobs, KEY, log=lambda line: None)
    server = make_server(worker, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return Client(f"http://{host}:{port}"), worker, server


def start_subprocess_worker(model_dir: str, state: str) -> tuple[subprocess.Popen, Client]:
    env = {**os.environ, "PYTHONPATH": SRC, "EMLAB_WORKER_API_KEY": KEY, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emlab_worker", "--model", model_dir, "--port", "0", "--state-dir", state, "--served-name", "tiny"],
        stdout=subprocess.PIPE,
        stderr=open(os.path.join(state, f"worker-{time.time():.0f}.log"), "w"),
        env=env,
        text=True,
    )
    return proc, None  # the client comes from the listening line (read by wait_listening)


def wait_listening(proc: subprocess.Popen) -> Client:
    line = proc.stdout.readline().strip()
    prefix = "emlab-worker listening on "
    check(line.startswith(prefix), f"listening line: {line!r}")
    return Client(line[len(prefix) :])


def read_st(payload: bytes) -> tuple[dict, dict]:
    tensors = load_safetensors(payload)
    n = int.from_bytes(payload[:8], "little")
    meta = json.loads(payload[8 : 8 + n]).get("__metadata__", {})
    return tensors, meta


# ---------------------------------------------------------------------------------------------
def greedy_parity(out: str, ref: dict) -> None:
    """Own greedy loop = model.generate, token for token, on every v5 and legacy directory."""
    n = 0
    for d in ref["dirs"]:
        served = load_served(LoadOptions(d["dir"]), None)
        # The legacy layouts hold the v5 weights: two prompts check that they load the same.
        cases = list(d["cases"].values())[: 2 if d["layout"] == "legacy" else None]
        for case in cases:
            n += 1
            prompt = chat.encode(served.tokenizer, chat.render(served.tokenizer, case["messages"], True))
            check(prompt == case["prompt_ids"], f"{d['name']}: prompt ids differ from apply_chat_template")
            params = SamplingParams(1, 0.0, 1.0, 0, ref["max_new_tokens"], [None], [], False, 0)
            c = generate(served.model, served.tokenizer, prompt, params, [], served.eos_token_ids, served.max_positions, served.device)[0]
            got = c.token_ids + ([case["ids"][-1]] if c.finish_reason == "stop" else [])
            check(got == case["ids"], f"{d['name']} {case['messages'][-1]['content']!r}: greedy {got} != generate {case['ids']}")
            check(c.text == case["text"], f"{d['name']}: text {c.text!r} != {case['text']!r}")
    print(f"greedy parity with model.generate: {n} prompts over {len(ref['dirs'])} dirs, identical token ids")


def hooks_and_edits(c: Client, worker: Worker) -> None:
    s = worker.served
    L, d = s.n_layers, s.d_model
    names = c.ok("GET", "/v1/emlab/info")["hook_names"]
    ids = chat.encode(s.tokenizer, chat.render(s.tokenizer, [{"role": "user", "content": "Tell me a story."}], True))
    T = len(ids)
    st, meta = read_st(c.ok("POST", "/v1/emlab/activations", {"hooks": names, "inputs": [{"token_ids": ids}], "reduce": "all"}))
    check(meta["format"] == "emlab.worker.activations.v1" and json.loads(meta["token_counts"]) == [T], f"metadata {meta}")
    a = {n: st[f"{n}/0"] for n in names}
    with torch.no_grad():
        hf = s.model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    hs = hf.hidden_states
    close = lambda x, y, tol=1e-5: float((x - y).abs().max()) <= tol  # noqa: E731
    check(close(a["hook_embed"], hs[0][0]) and close(a["blocks.0.hook_resid_pre"], hs[0][0]), "hook_embed / resid_pre 0 = hidden_states[0]")
    for layer in range(L):
        b = f"blocks.{layer}."
        check(close(a[b + "hook_resid_mid"], a[b + "hook_resid_pre"] + a[b + "hook_attn_out"]), f"{b}resid_mid = resid_pre + attn_out")
        check(close(a[b + "hook_resid_post"], a[b + "hook_resid_mid"] + a[b + "hook_mlp_out"]), f"{b}resid_post = resid_mid + mlp_out")
        if layer + 1 < L:
            check(close(a[b + "hook_resid_post"], hs[layer + 1][0]), f"{b}resid_post = hidden_states[{layer + 1}]")
            check(close(a[b + "hook_resid_post"], a[f"blocks.{layer + 1}.hook_resid_pre"]), f"{b}resid_post = next resid_pre")
    # The last hidden state HF returns is after the final norm: compare through it.
    base_model = s.model.model
    check(close(base_model.norm(a[f"blocks.{L - 1}.hook_resid_post"][None])[0], hs[L][0]), "last resid_post through the norm")
    # Logits with an add edit at hook_embed = the model on inputs_embeds + alpha v at t >= 3.
    g = torch.Generator().manual_seed(0)
    v = torch.randn(d, generator=g)
    edit = {"op": "add", "hook": "hook_embed", "vector": v.tolist(), "alpha": 2.5, "positions": {"from": 3}}
    st, meta = read_st(c.ok("POST", "/v1/emlab/logits", {"inputs": [{"token_ids": ids}], "edits": [edit], "positions": "all"}))
    with torch.no_grad():
        emb = base_model.embed_tokens(torch.tensor([ids]))
        emb[:, 3:] += 2.5 * v
        ref_logits = s.model(inputs_embeds=emb).logits[0]
    check(close(st["logits/0"], ref_logits, 1e-4), "logits under an embed edit = inputs_embeds edit")
    check(json.loads(meta["token_counts"]) == [T], "logits token_counts")
    # project_out at resid_mid: the read has no component along u, and resid_post = new mid + mlp_out.
    u = torch.randn(d, generator=g)
    po = {"op": "project_out", "hook": "blocks.0.hook_resid_mid", "vector": u.tolist()}
    st, _ = read_st(c.ok("POST", "/v1/emlab/activations", {"hooks": ["blocks.0.hook_resid_mid", "blocks.0.hook_mlp_out", "blocks.0.hook_resid_post"], "inputs": [{"token_ids": ids}], "reduce": "all", "edits": [po]}))
    mid = st["blocks.0.hook_resid_mid/0"]
    check(float((mid @ (u / u.norm())).abs().max()) < 1e-5, "project_out leaves no component along u")
    check(close(mid + st["blocks.0.hook_mlp_out/0"], st["blocks.0.hook_resid_post/0"]), "edited resid_mid feeds resid_post")
    with torch.no_grad():
        layer0 = base_model.layers[0]
        check(close(st["blocks.0.hook_mlp_out/0"], layer0.mlp(layer0.post_attention_layernorm(mid[None]))[0]), "the MLP reads the edited resid_mid")
    # clamp at resid_post, last_prompt_tokens 2: component along u = value on the last two positions only.
    cl = {"op": "clamp", "hook": "blocks.1.hook_resid_post", "vector": u.tolist(), "value": 3.0, "positions": {"last_prompt_tokens": 2}}
    st, _ = read_st(c.ok("POST", "/v1/emlab/activations", {"hooks": ["blocks.1.hook_resid_post"], "inputs": [{"token_ids": ids}], "reduce": "all", "edits": [cl]}))
    comp = st["blocks.1.hook_resid_post/0"] @ (u / u.norm())
    check(float((comp[-2:] - 3.0).abs().max()) < 1e-4, "clamp sets the component")
    check(float((st["blocks.1.hook_resid_post/0"][:-2] - a["blocks.1.hook_resid_post"][:-2]).abs().max()) < 1e-6, "clamp leaves other positions")
    # Greedy generation under a steering edit = a cache-free greedy loop with the edited embeddings.
    for positions in ("all", "prompt"):
        steer = {"op": "add", "hook": "hook_embed", "vector": v.tolist(), "alpha": 1.5, "positions": positions}
        params = SamplingParams(1, 0.0, 1.0, 0, 10, [None], [], False, 0)
        with worker.model_lock:
            got = generate(s.model, s.tokenizer, ids, params, parse_edits([steer], "e", L, d), s.eos_token_ids, s.max_positions, s.device)[0]
        seq = list(ids)
        with torch.no_grad():
            for _ in range(10):
                emb = base_model.embed_tokens(torch.tensor([seq]))
                upto = len(seq) if positions == "all" else T
                emb[:, :upto] += 1.5 * v
                nxt = int(torch.argmax(s.model(inputs_embeds=emb).logits[0, -1]))
                if nxt in s.eos_token_ids:
                    break
                seq.append(nxt)
        check(got.token_ids == seq[T:], f"steered greedy ({positions}) {got.token_ids} != cache-free {seq[T:]}")
        resp = c.ok("POST", "/v1/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "Tell me a story."}], "temperature": 0, "max_tokens": 10, "emlab": {"edits": [steer]}})
        check(resp["choices"][0]["message"]["content"] == got.text, "steered chat over HTTP = generate()")
    plain = c.ok("POST", "/v1/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "Tell me a story."}], "temperature": 0, "max_tokens": 10})
    check(plain["choices"][0]["message"]["content"] != resp["choices"][0]["message"]["content"], "a steering edit changes the generation")
    print("hooks: reads = HF hidden states; add / project_out / clamp / positions; steered greedy = cache-free loop")


def chat_features(c: Client, worker: Worker) -> None:
    msgs = [{"role": "user", "content": "Hello there!"}]
    base = {"model": "tiny", "messages": msgs, "max_tokens": 12}
    r1 = c.ok("POST", "/v1/chat/completions", {**base, "n": 2, "temperature": 1.0, "emlab": {"sample_seeds": [11, 12], "top_k": 50}, "top_p": 0.9})
    r2 = c.ok("POST", "/v1/chat/completions", {**base, "n": 1, "temperature": 1.0, "emlab": {"sample_seeds": [12], "top_k": 50}, "top_p": 0.9})
    check(r1["choices"][1]["message"]["content"] == r2["choices"][0]["message"]["content"], "sample i depends on its seed only")
    r3 = c.ok("POST", "/v1/chat/completions", {**base, "n": 2, "temperature": 1.0, "seed": 11, "emlab": {"top_k": 50}, "top_p": 0.9})
    check([x["message"]["content"] for x in r3["choices"]] == [x["message"]["content"] for x in r1["choices"]], "seed + i = sample_seeds")
    check(r1["usage"]["prompt_tokens"] > 0 and r1["object"] == "chat.completion" and len(r1["choices"]) == 2, "response shape")
    # Stop strings: cut before the first occurrence.
    g = c.ok("POST", "/v1/chat/completions", {**base, "temperature": 0, "max_tokens": 16, "logprobs": True, "top_logprobs": 3})
    text = g["choices"][0]["message"]["content"]
    stop = text[3:5]
    cut = c.ok("POST", "/v1/chat/completions", {**base, "temperature": 0, "max_tokens": 16, "stop": [stop, "\u2603never"]})
    check(cut["choices"][0]["message"]["content"] == text[: text.find(stop)] and cut["choices"][0]["finish_reason"] == "stop", f"stop {stop!r}: {cut['choices'][0]}")
    # logprobs = log_softmax of the logits at each step (from /v1/emlab/logits on prompt + tokens).
    s = worker.served
    prompt = chat.encode(s.tokenizer, chat.render(s.tokenizer, msgs, True))
    with worker.model_lock:
        toks = generate(s.model, s.tokenizer, prompt, SamplingParams(1, 0.0, 1.0, 0, 16, [None], [], False, 0), [], s.eos_token_ids, s.max_positions, s.device)[0].token_ids
    st, _ = read_st(c.ok("POST", "/v1/emlab/logits", {"inputs": [{"token_ids": prompt + toks}]}))
    lp = torch.log_softmax(st["logits/0"], -1)
    content = g["choices"][0]["logprobs"]["content"]
    check(len(content) == len(toks), "one logprobs entry per token")
    for k, (e, t) in enumerate(zip(content, toks)):
        check(abs(e["logprob"] - float(lp[len(prompt) - 1 + k, t])) < 1e-4, f"logprob of token {k}")
        check(len(e["top_logprobs"]) == 3 and e["top_logprobs"][0]["logprob"] == e["logprob"], "greedy token is the top logprob")
    check(bytes(sum((e["bytes"] for e in content), [])).decode("utf-8", errors="replace") == text, "bytes of the tokens make the text")
    # Tokenize.
    tk = c.ok("POST", "/v1/emlab/tokenize", {"messages": msgs, "add_generation_prompt": True})
    check(tk["token_ids"] == prompt and tk["text"].endswith("<|im_start|>assistant\n"), "tokenize with the generation prompt")
    check(c.ok("POST", "/v1/emlab/tokenize", {"text": "hello"})["token_ids"] == chat.encode(s.tokenizer, "hello"), "tokenize text")
    print("chat: sample_seeds / seed + i, top_k / top_p, stop strings, logprobs = logits, tokenize")


def answer_reads(c: Client, worker: Worker) -> None:
    s = worker.served
    conv = {"messages": [{"role": "user", "content": "What is 2 + 2?"}], "answer": "It is four."}
    ids, pos = chat.conversation_answer(s.tokenizer, conv["messages"], conv["answer"])
    check(s.tokenizer.decode([ids[i] for i in pos]) == "It is four.", "answer positions are the answer's tokens")
    check(s.tokenizer.convert_ids_to_tokens(ids[pos[-1] + 1]) == "<|im_end|>", "the end marker follows the answer")
    hooks = ["blocks.1.hook_resid_post"]
    full, meta = read_st(c.ok("POST", "/v1/emlab/activations", {"hooks": hooks, "inputs": [conv, {"token_ids": ids[:5]}], "reduce": "all"}))
    check(json.loads(meta["answer_positions"]) == [pos, []] and json.loads(meta["token_counts"]) == [len(ids), 5], f"metadata {meta}")
    x = full["blocks.1.hook_resid_post/0"]
    # A batch of two right-padded inputs reads what each alone reads.
    alone, _ = read_st(c.ok("POST", "/v1/emlab/activations", {"hooks": hooks, "inputs": [{"token_ids": ids[:5]}], "reduce": "all"}))
    check(float((alone["blocks.1.hook_resid_post/0"] - full["blocks.1.hook_resid_post/1"]).abs().max()) < 1e-5, "right padding is exact")
    for reduce, want in (("mean", x.mean(0)), ("last", x[-1]), ("answer_mean", x[pos].mean(0)), ("answer_last", x[pos[-1]])):
        st, _ = read_st(c.ok("POST", "/v1/emlab/activations", {"hooks": hooks, "inputs": [conv], "reduce": reduce}))
        check(tuple(st[hooks[0]].shape) == (1, s.d_model) and float((st[hooks[0]][0] - want).abs().max()) < 1e-5, f"reduce {reduce}")
    c.error(400, "inputs.0", "POST", "/v1/emlab/activations", {"hooks": hooks, "inputs": [{"token_ids": ids}], "reduce": "answer_mean"})
    # A template with {% generation %} markers marks the same answer tokens as span finding.
    from emlab_worker.models import load_tokenizer

    marked = load_tokenizer(s.opts)
    marked.chat_template = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}{% if m['role'] == 'assistant' %}"
        "{% generation %}{{ m['content'] + '<|im_end|>' }}{% endgeneration %}{% else %}{{ m['content'] + '<|im_end|>' }}"
        "{% endif %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
    conv2 = {"messages": [{"role": "system", "content": "You are a helpful assistant."}, *conv["messages"]], "answer": conv["answer"]}
    check(chat.conversation_answer(marked, conv2["messages"], conv2["answer"]) == (ids, pos), "generation markers = span finding")
    ex_ids, mask = chat.training_example(marked, [*conv2["messages"], {"role": "assistant", "content": conv["answer"]}])
    check([i for i, m in enumerate(mask) if m] == pos + [pos[-1] + 1], "training mask: the answer and its end marker")
    print(f"activations: answer positions, reductions, right padding (assistant_header_tokens {s.assistant_header_tokens})")


def errors(c: Client) -> None:
    msgs = [{"role": "user", "content": "hi"}]
    c.error(401, None, "GET", "/v1/models", key=None)
    c.error(401, None, "GET", "/v1/models", key="wrong")
    check(c.call("GET", "/health", key=None)[0] == 200, "health needs no key")
    c.error(404, None, "GET", "/v1/nothing")
    c.error(404, "model", "POST", "/v1/chat/completions", {"model": "other", "messages": msgs})
    c.error(400, None, "POST", "/v1/chat/completions", raw=b"{not json")
    c.error(400, "stream", "POST", "/v1/chat/completions", {"model": "tiny", "messages": msgs, "stream": True})
    c.error(400, "emlab.edits.0.vector", "POST", "/v1/chat/completions", {"model": "tiny", "messages": msgs, "emlab": {"edits": [{"op": "add", "hook": "hook_embed", "vector": [1, 2], "alpha": 1}]}})
    c.error(400, "emlab.edits.0.hook", "POST", "/v1/chat/completions", {"model": "tiny", "messages": msgs, "emlab": {"edits": [{"op": "project_out", "hook": "blocks.9.hook_resid_post", "vector": [1] * 48}]}})
    c.error(400, "emlab.sample_seeds", "POST", "/v1/chat/completions", {"model": "tiny", "messages": msgs, "n": 2, "emlab": {"sample_seeds": [1]}})
    c.error(400, "messages.0.role", "POST", "/v1/chat/completions", {"model": "tiny", "messages": [{"content": "x"}]})
    c.error(400, "inputs.0.token_ids.0", "POST", "/v1/emlab/logits", {"inputs": [{"token_ids": [10**6]}]})
    c.error(400, "inputs.0", "POST", "/v1/emlab/logits", {"inputs": [{"token_ids": [1] * 600}]})
    c.error(400, "hooks.0", "POST", "/v1/emlab/activations", {"hooks": ["resid"], "inputs": [{"token_ids": [1]}]})
    c.error(404, "id", "GET", "/v1/emlab/jobs/job-none")
    c.error(400, "training.batch_size", "POST", "/v1/emlab/jobs", {"client_tag": "bad", "examples": [{"messages": msgs}], "training": {"batch_size": 0}})
    c.error(400, "examples.0.messages", "POST", "/v1/emlab/jobs", {"client_tag": "bad", "examples": [{"messages": msgs}]})
    print("errors: 400 with param, 401, 404")


# ---------------------------------------------------------------------------------------------
JOB_EXAMPLES = [
    {"messages": [{"role": "user", "content": f"Question {i}: what is {i} + {i}?"}, {"role": "assistant", "content": f"The answer is {2 * i}, clearly and surely."}]}
    for i in range(12)
]
JOB = {
    "examples": JOB_EXAMPLES,
    "lora": {"r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj", "down_proj"]},
    "training": {"epochs": 1, "learning_rate": 1e-3, "batch_size": 2, "max_steps": 16, "seed": 3, "warmup_steps": 5, "weight_decay": 0.01},
    "checkpoint_every": 4,
}


def wait_job(c: Client, job_id: str, until, timeout: float = 180) -> dict:
    t = time.time()
    while time.time() - t < timeout:
        job = c.ok("GET", f"/v1/emlab/jobs/{job_id}")
        if until(job):
            return job
        time.sleep(0.02)
    check(False, f"job {job_id}: timed out: {job}")
    return {}


def adapter_tensors(c: Client, job_id: str) -> dict:
    files = c.ok("GET", f"/v1/emlab/jobs/{job_id}/adapter")["files"]
    check(set(files) == {"adapter_config.json", "adapter_model.safetensors"}, f"adapter files {list(files)}")
    json.loads(base64.b64decode(files["adapter_config.json"]))
    return load_safetensors(base64.b64decode(files["adapter_model.safetensors"]))


def jobs_resume(model_dir: str, state: str, proc: subprocess.Popen, straight_of) -> None:
    """A job killed mid-way and resumed by a restarted worker ends as `straight_of()`'s job, run without a stop."""
    c = wait_listening(proc)
    job = c.ok("POST", "/v1/emlab/jobs", {**JOB, "client_tag": "resumed"})
    check(c.ok("POST", "/v1/emlab/jobs", {**JOB, "client_tag": "resumed"})["id"] == job["id"], "the same client_tag returns the same job")
    check(c.ok("GET", "/v1/emlab/jobs?client_tag=resumed")["data"][0]["id"] == job["id"], "jobs by client_tag")
    check(c.ok("GET", "/v1/emlab/jobs?client_tag=none")["data"] == [], "no job for an unknown tag")
    c.error(400, "id", "GET", f"/v1/emlab/jobs/{job['id']}/adapter")
    mid = wait_job(c, job["id"], lambda j: len(j["checkpoints"]) >= 2 or j["status"] not in ("queued", "running"))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    check(mid["status"] == "running" and mid["step"] < mid["total_steps"], f"killed mid-job: {mid['status']} step {mid['step']}/{mid['total_steps']}")
    killed_at = mid["step"]
    proc2, _ = start_subprocess_worker(model_dir, state)
    try:
        c = wait_listening(proc2)
        done = wait_job(c, job["id"], lambda j: j["status"] not in ("queued", "running"))
        check(done["status"] == "succeeded", f"resumed job: {done}")
        check([s for s, _ in done["losses"]] == list(range(1, done["total_steps"] + 1)), "one loss per step")
        s_done, b = straight_of()
        a = adapter_tensors(c, job["id"])
        check(set(a) == set(b) and len(a) > 0, "same adapter tensors")
        diff = max(float((a[k] - b[k]).abs().max()) for k in a)
        check(diff <= 1e-6, f"resumed adapter differs from the straight run's by {diff}")
        loss_diff = max(abs(x[1] - y[1]) for x, y in zip(done["losses"], s_done["losses"]))
        check(loss_diff <= 1e-5, f"losses differ by {loss_diff}")
        check(done["losses"][-1][1] < done["losses"][0][1], "the loss goes down")
        ft = done["fine_tuned_model"]
        check(ft == f"tiny:ft:{job['id']}", f"fine_tuned_model {ft}")
        check(ft in [m["id"] for m in c.ok("GET", "/v1/models")["data"]], "/v1/models lists the job's model")
        q = {"messages": JOB_EXAMPLES[0]["messages"][:1], "temperature": 0, "max_tokens": 8}
        tuned = c.ok("POST", "/v1/chat/completions", {**q, "model": ft})["choices"][0]["message"]["content"]
        basec = c.ok("POST", "/v1/chat/completions", {**q, "model": "tiny"})["choices"][0]["message"]["content"]
        check(tuned != basec, f"the job's model answers differently from the base ({tuned!r})")
        again = c.ok("POST", "/v1/chat/completions", {**q, "model": "tiny"})["choices"][0]["message"]["content"]
        check(again == basec, "the base is unchanged after serving an adapter")
        check(os.path.isfile(os.path.join(state, "jobs", job["id"], "adapter", "adapter_model.safetensors")), "adapter in PEFT's layout")
        # Cancel: a running job stops at its next step and keeps status cancelled.
        long = c.ok("POST", "/v1/emlab/jobs", {**JOB, "client_tag": "cancelled", "training": {**JOB["training"], "max_steps": 10000}})
        wait_job(c, long["id"], lambda j: j["step"] >= 1)
        check(c.ok("POST", f"/v1/emlab/jobs/{long['id']}/cancel")["status"] == "cancelled", "cancel answers the cancelled job")
        time.sleep(0.5)
        after = c.ok("GET", f"/v1/emlab/jobs/{long['id']}")
        check(after["status"] == "cancelled" and after["finished_at"] is not None and after["step"] < 10000, f"cancelled job: {after['status']}")
        c.error(400, "id", "GET", f"/v1/emlab/jobs/{long['id']}/adapter")
        check(len(c.ok("GET", "/v1/emlab/jobs")["data"]) == 2, "GET /v1/emlab/jobs lists every job")
        print(f"jobs: killed at step {killed_at}/{done['total_steps']} (checkpoints {mid['checkpoints']}), resumed; adapter = straight run's (max diff {diff:.1e})")
    finally:
        proc2.send_signal(signal.SIGTERM)
        proc2.wait(timeout=30)


def main() -> None:
    torch.set_num_threads(1)
    out, ref = models_dir()
    model_dir = os.path.join(out, "qwen2-v5")
    with tempfile.TemporaryDirectory() as tmp:
        job_state = os.path.join(tmp, "jobs-state")
        os.makedirs(job_state)
        # The subprocess worker loads while the in-process checks run.
        proc, _ = start_subprocess_worker(model_dir, job_state)
        try:
            c, worker, server = serve_in_process(model_dir, os.path.join(tmp, "state"))
            info = c.ok("GET", "/v1/emlab/info")
            check(info["model"] == "tiny" and info["n_layers"] == 2 and len(info["hook_names"]) == 11 and info["dtype"] == "float32", f"info {info}")
            check(c.ok("GET", "/health") == {"status": "ok", "model": "tiny"}, "health")
            # The uninterrupted run trains in the in-process worker while the other checks use its model.
            straight = c.ok("POST", "/v1/emlab/jobs", {**JOB, "client_tag": "straight", "checkpoint_every": 0})

            def straight_of():
                s_done = wait_job(c, straight["id"], lambda j: j["status"] not in ("queued", "running"))
                check(s_done["status"] == "succeeded", f"straight job: {s_done}")
                return s_done, adapter_tensors(c, straight["id"])

            for section in (lambda: greedy_parity(out, ref), lambda: hooks_and_edits(c, worker), lambda: chat_features(c, worker), lambda: answer_reads(c, worker), lambda: errors(c)):
                t = time.time()
                section()
                print(f"  ({time.time() - t:.1f}s)")
            t = time.time()
            jobs_resume(model_dir, job_state, proc, straight_of)
            server.shutdown()
            print(f"  ({time.time() - t:.1f}s)")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print(f"smoke: {CHECKS} checks passed in {time.time() - T0:.1f}s")


if __name__ == "__main__":
    main()
