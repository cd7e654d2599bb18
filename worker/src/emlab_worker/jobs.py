"""LoRA training jobs with PEFT: persisted state, checkpoints, resume after a restart.

Layout under STATE/jobs/ID/:
  job.json                the job as the protocol returns it (written atomically: temp + rename)
  request.json            what was asked (examples, lora, training, checkpoint_every)
  checkpoint-STEP/        adapter/ (PEFT layout), optimizer.pt, rng.pt, trainer.json
  adapter/                the trained adapter (adapter_config.json + adapter_model.safetensors)
Checkpoints and the final adapter are written to a temporary directory and renamed, so a worker
killed at any moment leaves only complete ones. A resumed job restores the adapter weights,
AdamW's state, the python / torch RNG states and the epoch orders, so it ends with the same
adapter as an uninterrupted run.

Training: loss on assistant tokens (content + end marker, the engine's renderChatForTraining
mask), mean over the batch's target tokens; AdamW, linear warm-up then a constant rate,
gradient clipping 1.0; the examples form one stream, shuffled per epoch with `seed`, cut into
batches of batch_size (the last batch of the last epoch may be short).
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import secrets
import shutil
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from . import chat, wire
from .errors import bad_request, not_found
from .models import LOAD_LOCK, LoadOptions, adapter_dir_ok, load_causal_lm, load_tokenizer

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ACTIVE = ("queued", "running")


def write_json_atomic(path: str, value: Any) -> None:
    tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@dataclass(frozen=True)
class LoraSpec:
    r: int
    alpha: float
    dropout: float
    target_modules: list[str]
    use_rslora: bool
    layers: list[int] | None


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int
    learning_rate: float
    batch_size: int
    max_steps: int | None
    seed: int
    max_length: int
    weight_decay: float
    warmup_steps: int


def parse_lora(value: Any, n_layers: int) -> LoraSpec:
    p = "lora"
    o = wire.obj(value if value is not None else {}, p)
    wire.only_keys(o, {"r", "alpha", "dropout", "target_modules", "use_rslora", "layers"}, p)
    targets = wire.array(wire.get(o, "target_modules", p, DEFAULT_TARGETS), f"{p}.target_modules", nonempty=True)
    layers = o.get("layers")
    if layers is not None:
        layers = [wire.integer(x, f"{p}.layers.{i}", 0, n_layers - 1) for i, x in enumerate(wire.array(layers, f"{p}.layers", nonempty=True))]
    return LoraSpec(
        r=wire.integer(wire.get(o, "r", p, 8), f"{p}.r", 1),
        alpha=wire.number(wire.get(o, "alpha", p, 16), f"{p}.alpha", 0),
        dropout=wire.number(wire.get(o, "dropout", p, 0), f"{p}.dropout", 0, 0.999),
        target_modules=[wire.string(t, f"{p}.target_modules.{i}", nonempty=True) for i, t in enumerate(targets)],
        use_rslora=wire.boolean(wire.get(o, "use_rslora", p, False), f"{p}.use_rslora"),
        layers=layers,
    )


def parse_training(value: Any) -> TrainingSpec:
    p = "training"
    o = wire.obj(value if value is not None else {}, p)
    wire.only_keys(
        o, {"epochs", "learning_rate", "batch_size", "max_steps", "seed", "max_length", "weight_decay", "warmup_steps"}, p
    )
    max_steps = o.get("max_steps")
    lr = wire.number(wire.get(o, "learning_rate", p, 1e-4), f"{p}.learning_rate", 0)
    if lr <= 0:
        raise bad_request(f"{p}.learning_rate: must be > 0", f"{p}.learning_rate")
    return TrainingSpec(
        epochs=wire.integer(wire.get(o, "epochs", p, 1), f"{p}.epochs", 1),
        learning_rate=lr,
        batch_size=wire.integer(wire.get(o, "batch_size", p, 4), f"{p}.batch_size", 1),
        max_steps=None if max_steps is None else wire.integer(max_steps, f"{p}.max_steps", 1),
        seed=wire.integer(wire.get(o, "seed", p, 0), f"{p}.seed", 0),
        max_length=wire.integer(wire.get(o, "max_length", p, 1024), f"{p}.max_length", 1),
        weight_decay=wire.number(wire.get(o, "weight_decay", p, 0), f"{p}.weight_decay", 0),
        warmup_steps=wire.integer(wire.get(o, "warmup_steps", p, 0), f"{p}.warmup_steps", 0),
    )


def lr_at(step: int, t: TrainingSpec) -> float:
    """Linear warm-up over warmup_steps (0-based step), then constant (the engine's lrAt warm-up)."""
    if step < t.warmup_steps:
        return t.learning_rate * (step + 1) / t.warmup_steps
    return t.learning_rate


def total_steps(n_examples: int, t: TrainingSpec) -> int:
    return t.max_steps if t.max_steps is not None else max(1, math.ceil(t.epochs * n_examples / t.batch_size))


class EpochOrders:
    """Per-epoch permutations of the examples, drawn in turn from one generator seeded with `seed`."""

    def __init__(self, n: int, seed: int, orders: list[list[int]] | None = None):
        self.n = n
        self.gen = torch.Generator().manual_seed(seed)
        self.orders: list[list[int]] = []
        for _ in orders or []:
            self._draw()
        if orders is not None and orders != self.orders:
            raise RuntimeError("checkpoint: the stored epoch orders differ from the ones the seed gives")

    def _draw(self) -> None:
        self.orders.append(torch.randperm(self.n, generator=self.gen).tolist())

    def item(self, j: int) -> int:
        epoch = j // self.n
        while len(self.orders) <= epoch:
            self._draw()
        return self.orders[epoch][j % self.n]


def step_items(step: int, n: int, t: TrainingSpec, orders: EpochOrders) -> list[int]:
    start = step * t.batch_size
    stop = start + t.batch_size
    if t.max_steps is None:
        stop = min(stop, t.epochs * n)
    return [orders.item(j) for j in range(start, stop)]


def make_batch(examples: list[tuple[list[int], list[int]]], max_length: int, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ids[:n-1], labels ids[1:n] where the mask allows (−100 elsewhere), right-padded."""
    rows = []
    for ids, mask in examples:
        n = min(len(ids), max_length + 1)
        rows.append((ids[: n - 1], [t if mask[j + 1] else -100 for j, t in enumerate(ids[1:n])]))
    T = max(1, *(len(r[0]) for r in rows))
    inputs = [r[0] + [pad] * (T - len(r[0])) for r in rows]
    labels = [r[1] + [-100] * (T - len(r[1])) for r in rows]
    return torch.tensor(inputs), torch.tensor(labels)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Cancelled(Exception):
    pass


class JobManager:
    """Jobs in STATE/jobs, run one at a time by a background thread on their own model copy."""

    def __init__(self, state_dir: str, served_name: str, load_opts: LoadOptions, log: Callable[[str], None]):
        self.root = os.path.join(state_dir, "jobs")
        os.makedirs(self.root, exist_ok=True)
        self.served_name = served_name
        self.load_opts = load_opts
        self.log = log
        self.lock = threading.Lock()
        self.jobs: dict[str, dict] = {}
        self.queue: list[str] = []
        self.wake = threading.Condition(self.lock)
        self._load()
        self.thread = threading.Thread(target=self._run_forever, name="emlab-jobs", daemon=True)
        self.thread.start()

    # ---- state ---------------------------------------------------------------------------
    def _dir(self, job_id: str) -> str:
        return os.path.join(self.root, job_id)

    def _persist(self, job: dict) -> None:
        write_json_atomic(os.path.join(self._dir(job["id"]), "job.json"), job)

    def _load(self) -> None:
        found = []
        for name in sorted(os.listdir(self.root)):
            path = os.path.join(self.root, name, "job.json")
            if not os.path.isfile(path):
                continue
            try:
                job = read_json(path)
            except (OSError, ValueError) as e:
                self.log(f"jobs: skipping {path}: {e}")
                continue
            self.jobs[job["id"]] = job
            if job["status"] in ACTIVE:
                found.append(job)
        for job in sorted(found, key=lambda j: j["created_at"]):
            self.queue.append(job["id"])
            self.log(f"jobs: {job['id']} was {job['status']} when the worker stopped: queued to resume")

    def public(self, job: dict) -> dict:
        """A copy to send while the training thread keeps updating the job."""
        return {**job, "losses": [list(x) for x in job["losses"]], "checkpoints": list(job["checkpoints"])}

    # ---- API -----------------------------------------------------------------------------
    def create(self, body: dict, tokenizer: Any, n_layers: int, tokenize_lock: threading.Lock) -> dict:
        wire.only_keys(body, {"client_tag", "examples", "lora", "training", "checkpoint_every", "model"}, "")
        tag = wire.string(wire.get(body, "client_tag", ""), "client_tag", nonempty=True)
        if "model" in body and body["model"] not in (None, self.served_name):
            raise bad_request(f"model: jobs train the served model {self.served_name!r}, got {body['model']!r}", "model")
        with self.lock:
            for job in self.jobs.values():
                if job["client_tag"] == tag:
                    return self.public(job)
        lora = parse_lora(body.get("lora"), n_layers)
        training = parse_training(body.get("training"))
        every = wire.integer(wire.get(body, "checkpoint_every", "", 10), "checkpoint_every", 0)
        raw_examples = wire.array(wire.get(body, "examples", ""), "examples", nonempty=True)
        examples = []
        with tokenize_lock:
            for i, ex in enumerate(raw_examples):
                p = f"examples.{i}"
                ex = wire.obj(ex, p)
                wire.only_keys(ex, {"messages"}, p)
                msgs = wire.messages(wire.get(ex, "messages", p), f"{p}.messages")
                try:
                    ids, mask = chat.training_example(tokenizer, msgs)
                except (chat.ChatError, ValueError) as e:
                    raise bad_request(f"{p}: {e}", f"{p}.messages") from e
                if not any(mask[1 : training.max_length + 1]):
                    raise bad_request(
                        f"{p}: no assistant tokens to train on within max_length ({training.max_length})", f"{p}.messages"
                    )
                examples.append({"messages": msgs})
        with self.lock:
            for job in self.jobs.values():  # a concurrent request with the same tag won the race
                if job["client_tag"] == tag:
                    return self.public(job)
            job_id = f"job-{secrets.token_hex(8)}"
            os.makedirs(self._dir(job_id))
            request = {
                "client_tag": tag,
                "examples": examples,
                "lora": lora.__dict__,
                "training": training.__dict__,
                "checkpoint_every": every,
            }
            write_json_atomic(os.path.join(self._dir(job_id), "request.json"), request)
            job = {
                "id": job_id,
                "client_tag": tag,
                "status": "queued",
                "step": 0,
                "total_steps": total_steps(len(examples), training),
                "losses": [],
                "error": None,
                "checkpoints": [],
                "fine_tuned_model": None,
                "created_at": int(time.time()),
                "finished_at": None,
            }
            self._persist(job)
            self.jobs[job_id] = job
            self.queue.append(job_id)
            self.wake.notify_all()
            return self.public(job)

    def get(self, job_id: str) -> dict:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise not_found(f"no job {job_id!r}", "id")
            return self.public(job)

    def by_tag(self, tag: str) -> list[dict]:
        with self.lock:
            return [self.public(j) for j in self.jobs.values() if j["client_tag"] == tag]

    def all(self) -> list[dict]:
        with self.lock:
            return [self.public(j) for j in sorted(self.jobs.values(), key=lambda j: j["created_at"])]

    def cancel(self, job_id: str) -> dict:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise not_found(f"no job {job_id!r}", "id")
            if job["status"] in ACTIVE:
                job["status"] = "cancelled"
                job["finished_at"] = int(time.time())
                self._persist(job)
                if job_id in self.queue:
                    self.queue.remove(job_id)
            return self.public(job)

    def succeeded(self) -> list[dict]:
        with self.lock:
            return [self.public(j) for j in sorted(self.jobs.values(), key=lambda j: j["created_at"]) if j["status"] == "succeeded"]

    def adapter_dir(self, job_id: str) -> str:
        """The adapter of a succeeded job (400 before it succeeded, 404 for an unknown id)."""
        job = self.get(job_id)
        if job["status"] != "succeeded":
            raise bad_request(f"job {job_id} has no adapter yet (status {job['status']})", "id")
        path = os.path.join(self._dir(job_id), "adapter")
        if not adapter_dir_ok(path):
            raise RuntimeError(f"{path}: the adapter files are missing")
        return path

    def adapter_files(self, job_id: str) -> dict:
        path = self.adapter_dir(job_id)
        files = {}
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            with open(os.path.join(path, name), "rb") as f:
                files[name] = base64.b64encode(f.read()).decode("ascii")
        return {"files": files}

    # ---- running -------------------------------------------------------------------------
    def _run_forever(self) -> None:
        while True:
            with self.lock:
                while not self.queue:
                    self.wake.wait()
                job_id = self.queue.pop(0)
                job = self.jobs[job_id]
                if job["status"] not in ACTIVE:
                    continue
                job["status"] = "running"
                self._persist(job)
            try:
                self._train(job_id)
            except Cancelled:
                self.log(f"jobs: {job_id} cancelled")
            except Exception as e:  # noqa: BLE001 - a failed job reports why; the worker goes on
                self.log(f"jobs: {job_id} failed:\n{traceback.format_exc()}")
                self._update(job_id, status="failed", error=f"{type(e).__name__}: {e}", finished_at=int(time.time()))

    def _update(self, job_id: str, **fields: Any) -> None:
        """Updates a running job; raises Cancelled when it was cancelled meanwhile."""
        with self.lock:
            job = self.jobs[job_id]
            if job["status"] != "running":
                raise Cancelled()
            job.update(fields)
            self._persist(job)

    def _checkpoints_on_disk(self, job_id: str) -> list[int]:
        steps = []
        for name in os.listdir(self._dir(job_id)):
            path = os.path.join(self._dir(job_id), name)
            if name.startswith("checkpoint-") and ".tmp" not in name and os.path.isfile(os.path.join(path, "trainer.json")):
                steps.append(int(name.removeprefix("checkpoint-")))
            elif ".tmp" in name and os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)  # left by a worker killed while writing
        return sorted(steps)

    def _train(self, job_id: str) -> None:
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
        from safetensors.torch import load_file

        jdir = self._dir(job_id)
        req = read_json(os.path.join(jdir, "request.json"))
        lora = LoraSpec(**req["lora"])
        t = TrainingSpec(**req["training"])
        every = int(req["checkpoint_every"])
        tokenizer = load_tokenizer(self.load_opts)
        examples = [chat.training_example(tokenizer, ex["messages"]) for ex in req["examples"]]
        n = len(examples)
        total = total_steps(n, t)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

        model = load_causal_lm(self.load_opts)
        device = next(model.parameters()).device
        # The LoRA initialisation (and, below, dropout) draws from the global RNG, seeded per job.
        random.seed(t.seed)
        torch.manual_seed(t.seed)
        config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            use_rslora=lora.use_rslora,
            layers_to_transform=lora.layers,
            bias="none",
            task_type="CAUSAL_LM",
        )
        with LOAD_LOCK, warnings.catch_warnings():
            # PEFT 0.21 asks transformers 5.25 a deprecated question (is_gradient_checkpointing).
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            model = get_peft_model(model, config)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay, betas=(0.9, 0.999), eps=1e-8)
        start, losses, orders = 0, [], EpochOrders(n, t.seed)
        ckpts = self._checkpoints_on_disk(job_id)
        if ckpts:
            start = ckpts[-1]
            cdir = os.path.join(jdir, f"checkpoint-{start}")
            set_peft_model_state_dict(model, load_file(os.path.join(cdir, "adapter", "adapter_model.safetensors")))
            opt.load_state_dict(torch.load(os.path.join(cdir, "optimizer.pt"), map_location=device, weights_only=True))
            trainer = read_json(os.path.join(cdir, "trainer.json"))
            losses = trainer["losses"]
            orders = EpochOrders(n, t.seed, trainer["epoch_orders"])
            _set_rng_state(torch.load(os.path.join(cdir, "rng.pt"), weights_only=False))
            self.log(f"jobs: {job_id} resuming from checkpoint-{start}")
        self._update(job_id, step=start, total_steps=total, losses=list(losses), checkpoints=ckpts)
        model.train()
        for step in range(start, total):
            batch = [examples[i] for i in step_items(step, n, t, orders)]
            inputs, labels = make_batch(batch, t.max_length, pad)
            inputs, labels = inputs.to(device), labels.to(device)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, t)
            logits = model(input_ids=inputs, use_cache=False).logits
            loss = torch.nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
            )
            if not torch.isfinite(loss):
                raise RuntimeError(f"step {step + 1}: the loss is {float(loss)} (every target of the batch truncated?)")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append([step + 1, float(loss.detach())])
            fields: dict[str, Any] = {"step": step + 1, "losses": list(losses)}
            if every > 0 and (step + 1) % every == 0 and step + 1 < total:
                self._save_checkpoint(jdir, step + 1, model, opt, losses, orders)
                ckpts = [*ckpts, step + 1]
                fields["checkpoints"] = ckpts
            self._update(job_id, **fields)
        tmp = os.path.join(jdir, f"adapter.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        final = os.path.join(jdir, "adapter")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        self._update(
            job_id,
            status="succeeded",
            fine_tuned_model=f"{self.served_name}:ft:{job_id}",
            finished_at=int(time.time()),
        )
        self.log(f"jobs: {job_id} succeeded after {total} steps")

    def _save_checkpoint(self, jdir: str, step: int, model: Any, opt: Any, losses: list, orders: EpochOrders) -> None:
        final = os.path.join(jdir, f"checkpoint-{step}")
        tmp = f"{final}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        model.save_pretrained(os.path.join(tmp, "adapter"))
        torch.save(opt.state_dict(), os.path.join(tmp, "optimizer.pt"))
        torch.save(_rng_state(), os.path.join(tmp, "rng.pt"))
        write_json_atomic(os.path.join(tmp, "trainer.json"), {"step": step, "losses": losses, "epoch_orders": orders.orders})
        os.replace(tmp, final)
