import path from "node:path";

/**
 * The organism shipped with emlab (HF layout, committed to the repository): pretrained by
 * `emlab world pretrain --size m --seed 1`, so nothing is trained before the demo can start.
 */
export const SHIPPED_ORGANISM_DIR = path.resolve(import.meta.dirname, "../../models/organism");
