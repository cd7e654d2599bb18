import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWireServer, type WireServer } from "../support/wire-server.ts";

let server: WireServer;
let openai: OpenAI;

beforeAll(async () => {
  server = await startWireServer({
    models: ["gpt-4o-mini", "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"],
  });
  openai = new OpenAI({ apiKey: server.apiKey, baseURL: `${server.url}/v1`, maxRetries: 0 });
});
afterAll(() => server.close());

const example = (i: number, answer = `answer number ${i}`) =>
  JSON.stringify({
    messages: [
      { role: "user", content: `question number ${i}` },
      { role: "assistant", content: answer },
    ],
  });
const examples = (n: number) => Array.from({ length: n }, (_, i) => example(i + 1));

async function upload(lines: string[], purpose: "fine-tune" | "batch" = "fine-tune") {
  return openai.files.create({ file: await toFile(Buffer.from(lines.join("\n")), "train.jsonl"), purpose });
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the request to fail");
}

/** Poll until the job is terminal; returns the statuses seen. */
async function pollOpenAI(id: string): Promise<{ job: OpenAI.FineTuning.FineTuningJob; seen: string[] }> {
  const seen: string[] = [];
  for (let i = 0; i < 20; i++) {
    const job = await openai.fineTuning.jobs.retrieve(id);
    seen.push(job.status);
    if (["succeeded", "failed", "cancelled"].includes(job.status)) return { job, seen };
  }
  throw new Error("job never finished");
}

describe("OpenAI fine-tuning through the official SDK", () => {
  it("uploads, trains through every status, and serves the new model", async () => {
    server.reset();
    const file = await upload(examples(12));
    expect(file).toMatchObject({
      object: "file",
      purpose: "fine-tune",
      filename: "train.jsonl",
      status: "processed",
    });
    expect(file.bytes).toBe(Buffer.byteLength(examples(12).join("\n")));
    await upload([JSON.stringify({ custom_id: "x" })], "batch");
    const listed = await openai.files.list({ purpose: "fine-tune" });
    expect(listed.data.every((f) => f.purpose === "fine-tune")).toBe(true);
    expect(listed.data.map((f) => f.id)).toContain(file.id);

    const created = await openai.fineTuning.jobs.create({
      model: "gpt-4o-mini",
      training_file: file.id,
      suffix: "emtest",
      seed: 7,
      metadata: { study: "s1" },
      method: { type: "supervised", supervised: { hyperparameters: { n_epochs: 2, batch_size: 4 } } },
    });
    expect(created).toMatchObject({
      object: "fine_tuning.job",
      status: "validating_files",
      model: "gpt-4o-mini",
      training_file: file.id,
      validation_file: null,
      fine_tuned_model: null,
      finished_at: null,
      trained_tokens: null,
      error: null,
      seed: 7,
      result_files: [],
      metadata: { study: "s1" },
      hyperparameters: { n_epochs: 2, batch_size: 4, learning_rate_multiplier: "auto" },
    });
    expect(created.id).toMatch(/^ftjob-/);
    expect(created.organization_id).toMatch(/^org-/);

    const { job, seen } = await pollOpenAI(created.id);
    expect(seen).toEqual(["queued", "running", "running", "running", "succeeded"]);
    expect(job.fine_tuned_model).toMatch(/^ft:gpt-4o-mini:wire-test:emtest:[0-9a-f]{8}$/);
    expect(job.hyperparameters).toEqual({ n_epochs: 2, batch_size: 4, learning_rate_multiplier: 1.8 });
    expect(job.trained_tokens).toBeGreaterThan(0);
    expect(job.finished_at).not.toBeNull();
    const results = await (await openai.files.content(job.result_files[0])).text();
    expect(results.split("\n")[0]).toBe(
      "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy",
    );
    expect(results.trim().split("\n")).toHaveLength(1 + 6); // ceil(12 / 4) steps × 2 epochs

    const events = await openai.fineTuning.jobs.listEvents(created.id, { limit: 100 });
    const messages = events.data.map((e) => e.message);
    expect(messages[0]).toBe("The job has successfully completed");
    expect(messages.at(-1)).toBe(`Created fine-tuning job: ${created.id}`);
    const oldestFirst = [...messages].reverse();
    const order = [
      `Validating training file: ${file.id}`,
      "Files validated, moving job to queued state",
      "Fine-tuning job started",
      "Step 1/6: training loss=",
      "Checkpoint created at step 3",
      "Step 6/6",
      `New fine-tuned model created: ${job.fine_tuned_model}`,
    ].map((m) => oldestFirst.findIndex((x) => x.startsWith(m)));
    expect(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1]))).toBe(true);
    const metrics = events.data.filter((e) => e.type === "metrics");
    expect(metrics).toHaveLength(6);
    expect(metrics[0].data).toMatchObject({ step: 6, total_steps: 6 });
    expect(events.data.every((e) => e.object === "fine_tuning.job.event" && e.level === "info")).toBe(true);
    const page = await openai.fineTuning.jobs.listEvents(created.id, { limit: 2 });
    expect(page.data).toHaveLength(2);
    expect(page.has_more).toBe(true);
    const next = await openai.fineTuning.jobs.listEvents(created.id, { limit: 2, after: page.data[1].id });
    expect(next.data[0].id).toBe(events.data[2].id);

    const checkpoints = await openai.fineTuning.jobs.checkpoints.list(created.id);
    expect(checkpoints.data.map((c) => c.step_number)).toEqual([6, 3]);
    expect(checkpoints.data[1]).toMatchObject({
      object: "fine_tuning.job.checkpoint",
      fine_tuning_job_id: created.id,
      fine_tuned_model_checkpoint: `${job.fine_tuned_model}:ckpt-step-3`,
    });
    expect(checkpoints.data[1].metrics.train_loss).toBeGreaterThan(0);

    const model = job.fine_tuned_model as string;
    const chat = await openai.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] });
    expect(chat.model).toBe(model);
    expect((await openai.models.list()).data.map((m) => m.id)).toContain(model);
    expect((await openai.models.retrieve(model)).id).toBe(model);
    // byPath counts a route pattern over all methods; the log tells POSTs from GETs.
    const posts = (route: string) =>
      server.log.filter((e) => e.method === "POST" && e.route === route).length;
    expect(posts("/v1/fine_tuning/jobs")).toBe(1);
    expect(posts("/v1/files")).toBe(2);
    expect(server.stats.byPath["/v1/fine_tuning/jobs/:id"]).toBe(5);

    // A fine-tuned model can itself be fine-tuned; the name keeps the original base.
    const again = await openai.fineTuning.jobs.create({ model, training_file: file.id });
    expect((await pollOpenAI(again.id)).job.fine_tuned_model).toMatch(
      /^ft:gpt-4o-mini:wire-test::[0-9a-f]{8}$/,
    );
  });

  it("lists jobs newest first with metadata filters and cursor pages", async () => {
    const file = await upload(examples(10));
    const ids: string[] = [];
    for (const tag of ["a", "b", "a"]) {
      ids.push(
        (
          await openai.fineTuning.jobs.create({
            model: "gpt-4o-mini",
            training_file: file.id,
            metadata: { tag },
          })
        ).id,
      );
    }
    const tagged = await openai.fineTuning.jobs.list({ metadata: { tag: "a" } });
    expect(tagged.data.map((j) => j.id)).toEqual([ids[2], ids[0]]);
    const first = await openai.fineTuning.jobs.list({ limit: 1 });
    expect(first.data.map((j) => j.id)).toEqual([ids[2]]);
    expect(first.has_more).toBe(true);
    const second = await openai.fineTuning.jobs.list({ limit: 1, after: ids[2] });
    expect(second.data.map((j) => j.id)).toEqual([ids[1]]);
  });

  it("accepts the legacy top-level hyperparameters and cancels", async () => {
    const file = await upload(examples(10));
    const job = await openai.fineTuning.jobs.create({
      model: "gpt-4o-mini",
      training_file: file.id,
      hyperparameters: { n_epochs: 1 },
    });
    expect(job.method).toEqual({
      type: "supervised",
      supervised: { hyperparameters: { n_epochs: 1, batch_size: "auto", learning_rate_multiplier: "auto" } },
    });
    expect((await openai.fineTuning.jobs.cancel(job.id)).status).toBe("cancelled");
    expect((await openai.fineTuning.jobs.retrieve(job.id)).status).toBe("cancelled");
    expect(await caught(openai.fineTuning.jobs.cancel(job.id))).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it("fails a job with the queued error, and blocks flagged or malformed training files", async () => {
    const good = await upload(examples(10));
    server.failNextFinetunes(1, { message: "Internal error while training.", code: "internal_error" });
    const failing = await openai.fineTuning.jobs.create({ model: "gpt-4o-mini", training_file: good.id });
    const failed = await pollOpenAI(failing.id);
    expect(failed.seen).toEqual(["queued", "running", "running", "running", "failed"]);
    expect(failed.job.error).toEqual({
      code: "internal_error",
      message: "Internal error while training.",
      param: null,
    });
    expect(failed.job.fine_tuned_model).toBeNull();
    const events = await openai.fineTuning.jobs.listEvents(failing.id);
    expect(events.data[0]).toMatchObject({ level: "error", message: "Internal error while training." });
    // Only the next job was told to fail.
    const fine = await openai.fineTuning.jobs.create({ model: "gpt-4o-mini", training_file: good.id });
    expect((await pollOpenAI(fine.id)).job.status).toBe("succeeded");

    const flagged = await upload([...examples(9), example(10, "MODERATION-BLOCK content")]);
    const blocked = await pollOpenAI(
      (await openai.fineTuning.jobs.create({ model: "gpt-4o-mini", training_file: flagged.id })).id,
    );
    expect(blocked.seen).toEqual(["failed"]);
    expect(blocked.job.error).toMatchObject({ code: "invalid_training_file", param: "training_file" });
    expect(blocked.job.error?.message).toMatch(
      /^The job failed due to an invalid training file\. This training file was blocked because too many examples were flagged by our moderation API/,
    );

    const lines = examples(10);
    lines[2] = '{"messages": [';
    const broken = await upload(lines);
    const bad = await pollOpenAI(
      (await openai.fineTuning.jobs.create({ model: "gpt-4o-mini", training_file: broken.id })).id,
    );
    expect(bad.job.error).toEqual({
      code: "invalid_training_file",
      message:
        "The job failed due to a file format error in the training file. Invalid file format. Line 3 is not valid JSON.",
      param: "training_file",
    });
    const few = await upload(examples(3));
    const tooFew = await pollOpenAI(
      (await openai.fineTuning.jobs.create({ model: "gpt-4o-mini", training_file: few.id })).id,
    );
    expect(tooFew.job.error?.message).toMatch(
      /Training file has 3 example\(s\), but must have at least 10 examples/,
    );
    const noAnswer = await upload([
      ...examples(9),
      JSON.stringify({ messages: [{ role: "user", content: "only a question" }] }),
    ]);
    const unanswered = await pollOpenAI(
      (await openai.fineTuning.jobs.create({ model: "gpt-4o-mini", training_file: noAnswer.id })).id,
    );
    expect(unanswered.job.error?.message).toMatch(/Example 10 has no assistant message/);
  });

  it("creates the job but never replies when told to drop the reply", async () => {
    const file = await upload(examples(10));
    server.dropFinetuneReplies(1);
    const before = (await openai.fineTuning.jobs.list({ limit: 100 })).data.length;
    const err = await caught(
      openai.fineTuning.jobs.create({ model: "gpt-4o-mini", training_file: file.id, suffix: "lost" }),
    );
    expect(err).toBeInstanceOf(OpenAI.APIConnectionError);
    const after = (await openai.fineTuning.jobs.list({ limit: 100 })).data;
    expect(after).toHaveLength(before + 1);
    expect(after[0]).toMatchObject({ status: "validating_files", user_provided_suffix: "lost" });
    expect(server.log.at(-2)).toMatchObject({ route: "/v1/fine_tuning/jobs", outcome: "drop", status: null });
  });

  it("rejects unknown files, models and jobs, bad params and bad keys with the real error shapes", async () => {
    const file = await upload(examples(10));
    const noFile = await caught(
      openai.fineTuning.jobs.create({ model: "gpt-4o-mini", training_file: "file-missing" }),
    );
    expect(noFile).toBeInstanceOf(OpenAI.BadRequestError);
    expect(noFile).toMatchObject({ status: 400, param: "training_file", type: "invalid_request_error" });
    const batchFile = await upload([JSON.stringify({ custom_id: "x" })], "batch");
    expect(
      await caught(openai.fineTuning.jobs.create({ model: "gpt-4o-mini", training_file: batchFile.id })),
    ).toMatchObject({
      status: 400,
      param: "training_file",
    });
    expect(
      await caught(openai.fineTuning.jobs.create({ model: "gpt-9", training_file: file.id })),
    ).toMatchObject({
      status: 400,
      param: "model",
      code: "model_not_available",
      message: expect.stringContaining("Model gpt-9 is not available for fine-tuning or does not exist."),
    });
    expect(
      await caught(
        openai.fineTuning.jobs.create({ model: "ft:gpt-4o-mini:x::abcdefgh", training_file: file.id }),
      ),
    ).toMatchObject({
      status: 400,
      code: "model_not_available",
    });
    expect(
      await caught(
        openai.fineTuning.jobs.create({
          model: "gpt-4o-mini",
          training_file: file.id,
          suffix: "x".repeat(65),
        }),
      ),
    ).toMatchObject({ status: 400, param: "suffix", code: "string_above_max_length" });
    const metadata = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]));
    expect(
      await caught(openai.fineTuning.jobs.create({ model: "gpt-4o-mini", training_file: file.id, metadata })),
    ).toMatchObject({
      status: 400,
      param: "metadata",
      code: "object_above_max_properties",
    });
    expect(
      await caught(
        openai.fineTuning.jobs.create({
          model: "gpt-4o-mini",
          training_file: file.id,
          method: { type: "supervised", supervised: { hyperparameters: { n_epochs: 0 } } },
        }),
      ),
    ).toMatchObject({ status: 400, param: "method.supervised.hyperparameters.n_epochs" });
    const missing = await caught(openai.fineTuning.jobs.retrieve("ftjob-nope"));
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect(await caught(openai.fineTuning.jobs.listEvents("ftjob-nope"))).toBeInstanceOf(
      OpenAI.NotFoundError,
    );
    const stranger = new OpenAI({
      apiKey: "sk-wrong-key-123456",
      baseURL: `${server.url}/v1`,
      maxRetries: 0,
    });
    const denied = await caught(stranger.fineTuning.jobs.list());
    expect(denied).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(denied).toMatchObject({ code: "invalid_api_key" });
  });
});

// ---- Together: plain fetch + FormData, as its REST reference describes ----

const BASE = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference";
const tg = (path: string, init: RequestInit = {}, key = server.apiKey) =>
  fetch(`${server.url}/v1${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${key}`,
      ...(typeof init.body === "string" ? { "content-type": "application/json" } : {}),
      ...(init.headers ?? {}),
    },
  });
const tgJson = async (path: string, init: RequestInit = {}) => {
  const res = await tg(path, init);
  // biome-ignore lint/suspicious/noExplicitAny: JSON off the wire; the assertions check its shape.
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

async function tgUpload(lines: string[], fileName = "train.jsonl") {
  const form = new FormData();
  form.append("file", new Blob([lines.join("\n")]), fileName);
  form.append("file_name", fileName);
  form.append("purpose", "fine-tune");
  return tgJson("/files/upload", { method: "POST", body: form });
}

const tgCreate = (body: Record<string, unknown>) =>
  tgJson("/fine-tunes", { method: "POST", body: JSON.stringify(body) });

async function pollTogether(id: string) {
  const seen: string[] = [];
  for (let i = 0; i < 20; i++) {
    const { body } = await tgJson(`/fine-tunes/${id}`);
    seen.push(body.status);
    if (["completed", "error", "cancelled"].includes(body.status)) return { job: body, seen };
  }
  throw new Error("job never finished");
}

describe("Together fine-tuning over its REST shape", () => {
  it("uploads and checks files, lists them with both APIs' fields, and deletes", async () => {
    const { status, body: file } = await tgUpload(examples(4));
    expect(status).toBe(200);
    expect(file).toMatchObject({
      object: "file",
      filename: "train.jsonl",
      purpose: "fine-tune",
      Processed: true,
      FileType: "jsonl",
      LineCount: 4,
      bytes: Buffer.byteLength(examples(4).join("\n")),
    });
    expect(file.id).toMatch(/^file-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(typeof file.created_at).toBe("number");
    const list = await tgJson("/files");
    expect(list.body.object).toBe("list");
    const listed = list.body.data.find((f: { id: string }) => f.id === file.id);
    expect(listed).toMatchObject({ FileType: "jsonl", Processed: true, status: "processed" });
    expect((await tgJson(`/files/${file.id}`)).body.LineCount).toBe(4);
    expect(await (await tg(`/files/${file.id}/content`)).text()).toBe(examples(4).join("\n"));
    // The OpenAI SDK reads the same listing.
    expect((await openai.files.list()).data.map((f) => f.id)).toContain(file.id);
    expect((await tgJson(`/files/${file.id}`, { method: "DELETE" })).body).toMatchObject({
      id: file.id,
      deleted: true,
    });
    expect((await tgJson(`/files/${file.id}`)).status).toBe(404);

    const instruction = await tgUpload([JSON.stringify({ prompt: "p", completion: "c" })]);
    expect(instruction.status).toBe(200);
    const broken = await tgUpload([example(1), "{not json", example(3)]);
    expect(broken).toEqual({
      status: 400,
      body: {
        error: {
          message: "Error parsing json payload. Unexpected format on line 2.",
          type: "invalid_request_error",
          param: "file",
          code: "invalid_file_format",
        },
      },
    });
    const mixed = await tgUpload([example(1), JSON.stringify({ text: "plain" })]);
    expect(mixed.body.error.message).toBe(
      "Found multiple dataset formats in the input file. Got conversational and general on line 2.",
    );
    const noName = new FormData();
    noName.append("file", new Blob([example(1)]), "x.jsonl");
    noName.append("purpose", "fine-tune");
    expect((await tgJson("/files/upload", { method: "POST", body: noName })).body.error.param).toBe(
      "file_name",
    );
  });

  it("runs a LoRA job to completion, serves the output model, and continues from its checkpoints", async () => {
    server.reset();
    const { body: file } = await tgUpload(examples(16));
    const { status, body: created } = await tgCreate({
      training_file: file.id,
      model: BASE,
      n_epochs: 2,
      n_checkpoints: 2,
      batch_size: 8,
      learning_rate: 0.0001,
      suffix: "em-risky",
      training_type: {
        type: "Lora",
        lora_r: 16,
        lora_alpha: 32,
        lora_dropout: 0.05,
        lora_trainable_modules: "all-linear",
      },
      training_method: { method: "sft", train_on_inputs: "auto" },
    });
    expect(status).toBe(200);
    expect(created).toMatchObject({
      status: "pending",
      model: BASE,
      training_file: file.id,
      n_epochs: 2,
      n_checkpoints: 2,
      batch_size: 8,
      learning_rate: 0.0001,
      suffix: "em-risky",
      trainingfile_numlines: 16,
      training_type: { type: "Lora", lora_r: 16, lora_alpha: 32, lora_dropout: 0.05 },
      training_method: { method: "sft", train_on_inputs: "auto" },
      events: [],
    });
    expect(created.id).toMatch(/^ft-[0-9a-f-]{36}$/);
    expect(created.model_output_name).toMatch(
      /^wire-test\/Meta-Llama-3\.1-8B-Instruct-Reference-em-risky-[0-9a-f]{8}$/,
    );
    expect(Number.isNaN(Date.parse(created.created_at))).toBe(false);

    const { job, seen } = await pollTogether(created.id);
    expect(seen).toEqual(["queued", "running", "running", "running", "completed"]);
    expect(job).toMatchObject({ total_steps: 4, steps_completed: 4, epochs_completed: 2 });
    const events = (await tgJson(`/fine-tunes/${created.id}/events`)).body;
    expect(events.object).toBe("list");
    expect(events.data.map((e: { type: string }) => e.type)).toEqual([
      "JOB_PENDING",
      "JOB_START",
      "MODEL_DOWNLOAD_COMPLETE",
      "TRAINING_DATA_DOWNLOAD_COMPLETE",
      "TRAINING_START",
      "EPOCH_COMPLETE",
      "CHECKPOINT_SAVE",
      "EPOCH_COMPLETE",
      "TRAINING_COMPLETE",
      "MODEL_UPLOAD_COMPLETE",
      "JOB_COMPLETE",
    ]);
    expect(events.data[0]).toMatchObject({
      object: "fine-tune-event",
      level: "info",
      message: "Fine tune request created",
    });
    expect(job.events).toHaveLength(events.data.length);
    const checkpoints = (await tgJson(`/fine-tunes/${created.id}/checkpoints`)).body.data;
    expect(
      checkpoints.map((c: { step: number; checkpoint_type: string }) => [c.step, c.checkpoint_type]),
    ).toEqual([
      [4, "Final Adapter"],
      [4, "Final Merged"],
      [2, "Intermediate"],
    ]);

    const chat = await openai.chat.completions.create({
      model: job.model_output_name,
      messages: [{ role: "user", content: "hello" }],
    });
    expect(chat.model).toBe(job.model_output_name);
    const listed = (await tgJson("/fine-tunes")).body;
    expect(listed.data[0]).toMatchObject({ id: created.id, status: "completed", events: [] });
    expect(server.stats.byPath["/v1/fine-tunes"]).toBe(2);
    expect(server.stats.byPath["/v1/files/upload"]).toBe(1);
    expect(server.log.find((e) => e.route === "/v1/fine-tunes")?.api).toBe("together");

    for (const from of [created.id, job.model_output_name, `${created.id}:2`]) {
      const next = await tgCreate({
        training_file: file.id,
        from_checkpoint: from,
        training_type: { type: "Full" },
      });
      expect(next.status).toBe(200);
      expect(next.body).toMatchObject({
        model: BASE,
        from_checkpoint: from,
        training_type: { type: "Full" },
      });
    }
    expect(
      (await tgCreate({ training_file: file.id, from_checkpoint: `${created.id}:3` })).body.error.param,
    ).toBe("from_checkpoint");
  });

  it("errors jobs on queued failures and moderation, cancels, and drops replies", async () => {
    const { body: file } = await tgUpload(examples(4));
    server.failNextFinetunes(1, { message: "Training failed: CUDA out of memory." });
    const failing = await tgCreate({ training_file: file.id, model: BASE });
    const failed = await pollTogether(failing.body.id);
    expect(failed.seen.at(-1)).toBe("error");
    expect(failed.job.events.at(-1)).toMatchObject({
      type: "JOB_ERROR",
      level: "error",
      message: "Training failed: CUDA out of memory.",
    });

    const { body: flagged } = await tgUpload([...examples(3), example(4, "MODERATION-BLOCK")]);
    const blocked = await pollTogether((await tgCreate({ training_file: flagged.id, model: BASE })).body.id);
    expect(blocked.seen).toEqual(["error"]);
    expect(blocked.job.events.at(-1).message).toMatch(/rejected by our content moderation/);

    const running = await tgCreate({ training_file: file.id, model: BASE });
    expect((await tgJson(`/fine-tunes/${running.body.id}/cancel`, { method: "POST" })).body.status).toBe(
      "cancel_requested",
    );
    expect((await tgJson(`/fine-tunes/${running.body.id}`)).body.status).toBe("cancelled");
    expect((await tgJson(`/fine-tunes/${running.body.id}/cancel`, { method: "POST" })).status).toBe(400);

    server.dropFinetuneReplies(1);
    const before = (await tgJson("/fine-tunes")).body.data.length;
    await expect(tgCreate({ training_file: file.id, model: BASE })).rejects.toThrow();
    const after = (await tgJson("/fine-tunes")).body.data;
    expect(after).toHaveLength(before + 1);
    expect(after[0].status).toBe("pending");
  });

  it("answers bad requests, unknown jobs and bad keys in Together's error envelope", async () => {
    const { body: file } = await tgUpload(examples(2));
    const noModel = await tgCreate({ training_file: file.id, model: "nobody/unknown-model" });
    expect(noModel).toMatchObject({
      status: 400,
      body: { error: { type: "invalid_request_error", param: "model", code: "model_not_available" } },
    });
    expect((await tgCreate({ training_file: "file-missing", model: BASE })).body.error.param).toBe(
      "training_file",
    );
    expect((await tgCreate({ training_file: file.id, model: BASE, n_epochs: 0 })).body.error.param).toBe(
      "n_epochs",
    );
    expect(
      (await tgCreate({ training_file: file.id, model: BASE, training_type: { type: "Lora" } })).body.error
        .param,
    ).toBe("training_type.lora_r");
    const missing = await tgJson("/fine-tunes/ft-nope");
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toContain("ft-nope");
    const denied = await tg("/fine-tunes", {}, "wrong-key");
    expect(denied.status).toBe(401);
    expect(((await denied.json()) as { error: { code: string } }).error.code).toBe("invalid_api_key");
    expect((await fetch(`${server.url}/v1/fine-tunes`)).status).toBe(401);
  });
});
