/** Hashes of the bundle's files (the datasets are written by serializeChatJsonl, src/datasets/chat-jsonl.ts). */
import { createHash } from "node:crypto";

export const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
