export {
  type BuiltReport,
  buildReport,
  DEFAULT_VIEWER_PORT,
  REPORT_FILE,
  type ReportOptions,
  writeReport,
} from "./build-report.ts";
export { escapeHtml } from "./escape.ts";
export { loadRun, type RunData } from "./load-run.ts";
