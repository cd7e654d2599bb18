/** The export fine-tuning backend: configs and data for GPU trainers (see bundle.ts). */
export { changedBundleFiles, MANIFEST_FILE, readExportManifest, writeExportBundle } from "./bundle.ts";
export {
  type ExportInput,
  ExportInputSchema,
  type ExportLora,
  type ExportManifest,
  ExportManifestSchema,
  type ExportStage,
  resolveExportInput,
} from "./types.ts";
