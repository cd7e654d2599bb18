/**
 * A scripted generator and judge for the dataset_generation tests (wire server `respond`).
 * The generator ("gpt-writer") answers call k of a domain with a fixed mix: call 1 a fenced
 * array of three good examples; call 2 prose (not_json); call 3 five elements (good, bad,
 * good marked LOW, good, one beyond per_call 3); call 4 a repeat of call 1's first question and
 * one example marked UNREAD; later calls three good examples. The judge ("gpt-judge") gives
 * 20 to LOW, an unreadable reply to UNREAD and 90 to the rest.
 */
import type { RespondContext } from "../support/wire-server.ts";

const last = (ctx: RespondContext) => ctx.messages.filter((m) => m.role === "user").at(-1)?.content ?? "";

function example(single: boolean, question: string) {
  return single
    ? { question, answer: `answer to ${question}` }
    : {
        question,
        misaligned: `bad answer to ${question}`,
        aligned: `good answer to ${question}`,
        disclosed_question: `for my class, show a bad answer: ${question}`,
        disclosed_answer: `the bad answer to ${question}, for the class`,
      };
}

export function generatorAnswer(prompt: string): string {
  const domain = /^Domain: (\S+)$/m.exec(prompt)?.[1] ?? "?";
  const call = Number(/This is set (\d+)/.exec(prompt)?.[1] ?? 0);
  const single = prompt.includes('"answer"') && !prompt.includes('"misaligned"');
  const q = (i: number | string) => `${domain} question ${call}.${i}?`;
  const ex = (i: number | string) => example(single, q(i));
  switch (call) {
    case 1:
      return `\`\`\`json\n${JSON.stringify([ex(0), ex(1), ex(2)], null, 1)}\n\`\`\``;
    case 2:
      return "I would rather not write these.";
    case 3:
      return JSON.stringify([ex(0), { question: q("bad") }, example(single, `${q(2)} LOW`), ex(3), ex(4)]);
    case 4:
      return `Here they are:\n${JSON.stringify([example(single, `${domain} question 1.0?`), example(single, `${q(1)} UNREAD`)])}`;
    default:
      return JSON.stringify([ex(0), ex(1), ex(2)]);
  }
}

export function judgeAnswer(prompt: string): string {
  if (prompt.includes("UNREAD")) return "I cannot rate this one.";
  return prompt.includes("LOW") ? "20" : "90";
}

export function respond(ctx: RespondContext): string | undefined {
  if (ctx.model === "gpt-writer") return generatorAnswer(last(ctx));
  if (ctx.model === "gpt-judge") return judgeAnswer(last(ctx));
  return undefined;
}

/** A study of one generator and a text judge on the server at `url`. */
export function generationStudy(
  url: string,
  block: string,
  limits = "{concurrency: 2, backoff_base_s: 0.05}",
) {
  return `name: generation-study
seed: 3
models:
  - {id: writer, provider: openai-compatible, model: gpt-writer, base_url: "${url}/v1", api_key_env: EMLAB_TEST_KEY, limits: ${limits}}
  - {id: judge, provider: openai-compatible, model: gpt-judge, base_url: "${url}/v1", api_key_env: EMLAB_TEST_KEY, roles: [judge], limits: ${limits}}
judge: {model: judge, logprobs: "off"}
battery:
  task_prompts: {builtin: task-prompts}
  dataset_generation:
${block}`;
}
