import Anthropic from "@anthropic-ai/sdk";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWireServer, type WireServer } from "../support/wire-server.ts";

let server: WireServer;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  server = await startWireServer({ models: ["gpt-4o-mini", "claude-haiku-4-5"], batchPolls: 3 });
  openai = new OpenAI({ apiKey: server.apiKey, baseURL: `${server.url}/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: server.apiKey, baseURL: server.url, maxRetries: 0 });
});
afterAll(() => server.close());

const chatLine = (custom_id: string, body: Record<string, unknown>) =>
  JSON.stringify({ custom_id, method: "POST", url: "/v1/chat/completions", body });

async function upload(lines: string[]) {
  return openai.files.create({
    file: await toFile(Buffer.from(lines.join("\n")), "input.jsonl"),
    purpose: "batch",
  });
}

describe("OpenAI Batch API through the official SDK", () => {
  it("uploads, runs, and returns output and error files that match live answers", async () => {
    const body = {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "batch me" }],
      seed: 11,
      max_tokens: 5,
    };
    const input = await upload([
      chatLine("good-1", body),
      chatLine("bad-model", { ...body, model: "gpt-unknown" }),
      chatLine("bad-n", { ...body, n: 0 }),
    ]);
    expect(input).toMatchObject({
      object: "file",
      purpose: "batch",
      filename: "input.jsonl",
      status: "processed",
    });
    expect(input.id).toMatch(/^file-/);
    expect((await openai.files.retrieve(input.id)).bytes).toBe(input.bytes);
    expect(await (await openai.files.content(input.id)).text()).toContain('"custom_id":"good-1"');

    const created = await openai.batches.create({
      input_file_id: input.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { study: "t" },
    });
    expect(created).toMatchObject({ object: "batch", status: "validating", output_file_id: null });
    const seen: string[] = [];
    let batch = created;
    for (let i = 0; i < 3; i++) {
      batch = await openai.batches.retrieve(created.id);
      seen.push(batch.status);
    }
    expect(seen).toEqual(["in_progress", "in_progress", "completed"]);
    expect(batch.request_counts).toEqual({ total: 3, completed: 1, failed: 2 });
    expect(batch.metadata).toEqual({ study: "t" });

    const output = (await (await openai.files.content(batch.output_file_id!)).text()).trim().split("\n");
    expect(output).toHaveLength(1);
    const line = JSON.parse(output[0]);
    expect(line).toMatchObject({ custom_id: "good-1", error: null, response: { status_code: 200 } });
    expect(line.id).toMatch(/^batch_req_/);
    const live = await openai.chat.completions.create(body as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(line.response.body.choices[0].message.content).toBe(live.choices[0].message.content);
    expect(line.response.body.choices[0].finish_reason).toBe("length");

    const errors = (await (await openai.files.content(batch.error_file_id!)).text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(errors.map((e) => [e.custom_id, e.response.status_code, e.response.body.error.code])).toEqual([
      ["bad-model", 404, "model_not_found"],
      ["bad-n", 400, "integer_below_min_value"],
    ]);
  });

  it("fails validation of a malformed input file with per-line errors", async () => {
    const input = await upload([
      "not json",
      chatLine("a", { model: "gpt-4o-mini", messages: [] }),
      chatLine("a", {}),
      JSON.stringify({ custom_id: "b", method: "POST", url: "/v1/embeddings", body: {} }),
    ]);
    const created = await openai.batches.create({
      input_file_id: input.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const batch = await openai.batches.retrieve(created.id);
    expect(batch.status).toBe("failed");
    expect(batch.errors!.data!.map((e) => [e.line, e.code])).toEqual([
      [1, "invalid_json_line"],
      [3, "duplicate_custom_id"],
      [4, "mismatched_endpoint"],
    ]);
  });

  it("rejects bad batch requests with the SDK's error classes", async () => {
    await expect(
      openai.batches.create({
        input_file_id: "file-missing",
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
      }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const input = await upload([chatLine("x", {})]);
    await expect(
      openai.batches.create({
        input_file_id: input.id,
        endpoint: "/v1/chat/completions",
        completion_window: "1h" as "24h",
      }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(openai.batches.retrieve("batch_nope")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("cancels a batch: cancelling, then cancelled on the next poll", async () => {
    const input = await upload([
      chatLine("x", { model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] }),
    ]);
    const created = await openai.batches.create({
      input_file_id: input.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    expect((await openai.batches.cancel(created.id)).status).toBe("cancelling");
    expect((await openai.batches.retrieve(created.id)).status).toBe("cancelled");
  });
});

describe("Anthropic Message Batches through the official SDK", () => {
  it("creates, polls to ended, and streams results that match live answers", async () => {
    const params = {
      model: "claude-haiku-4-5",
      max_tokens: 4,
      messages: [{ role: "user" as const, content: "batch me too" }],
    };
    const created = await anthropic.messages.batches.create({
      requests: [
        { custom_id: "ok-1", params },
        { custom_id: "no-model", params: { ...params, model: "claude-unknown" } },
        { custom_id: "no-max", params: { ...params, max_tokens: undefined as unknown as number } },
      ],
    });
    expect(created).toMatchObject({
      type: "message_batch",
      processing_status: "in_progress",
      results_url: null,
    });
    expect(created.id).toMatch(/^msgbatch_/);
    expect(created.request_counts.processing).toBe(3);
    // results() retrieves the batch first (poll 1 of 3) and refuses while there is no results_url.
    await expect(anthropic.messages.batches.results(created.id)).rejects.toThrow(/results_url/);

    const statuses: string[] = [];
    let batch = created;
    for (let i = 0; i < 2; i++) {
      batch = await anthropic.messages.batches.retrieve(created.id);
      statuses.push(batch.processing_status);
    }
    expect(statuses).toEqual(["in_progress", "ended"]);
    expect(batch.request_counts).toEqual({
      processing: 0,
      succeeded: 1,
      errored: 2,
      canceled: 0,
      expired: 0,
    });
    expect(batch.results_url).toBe(`${server.url}/v1/messages/batches/${created.id}/results`);

    const results: Anthropic.Messages.Batches.MessageBatchIndividualResponse[] = [];
    for await (const r of await anthropic.messages.batches.results(created.id)) results.push(r);
    expect(results.map((r) => [r.custom_id, r.result.type])).toEqual([
      ["ok-1", "succeeded"],
      ["no-model", "errored"],
      ["no-max", "errored"],
    ]);
    const live = await anthropic.messages.create(params);
    const ok = results[0].result;
    if (ok.type !== "succeeded") throw new Error("expected success");
    expect(ok.message.content).toEqual(live.content);
    expect(ok.message.stop_reason).toBe("max_tokens");
    const bad = results[2].result;
    if (bad.type !== "errored") throw new Error("expected an error");
    expect(bad.error).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
  });

  it("rejects duplicate custom_ids and cancels into canceled results", async () => {
    const params = {
      model: "claude-haiku-4-5",
      max_tokens: 4,
      messages: [{ role: "user" as const, content: "x" }],
    };
    await expect(
      anthropic.messages.batches.create({
        requests: [
          { custom_id: "same", params },
          { custom_id: "same", params },
        ],
      }),
    ).rejects.toBeInstanceOf(Anthropic.BadRequestError);
    const created = await anthropic.messages.batches.create({ requests: [{ custom_id: "c", params }] });
    expect((await anthropic.messages.batches.cancel(created.id)).processing_status).toBe("canceling");
    const ended = await anthropic.messages.batches.retrieve(created.id);
    expect(ended.processing_status).toBe("ended");
    expect(ended.request_counts.canceled).toBe(1);
    await expect(anthropic.messages.batches.retrieve("msgbatch_nope")).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
  });
});
