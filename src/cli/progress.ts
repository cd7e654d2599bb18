import cliProgress from "cli-progress";
import type { ProgressSink, ProgressState } from "../runs/scheduler.ts";

const fmtTokens = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : `${n}`;

function line(s: ProgressState, etaS: number | null): string {
  const eta =
    etaS === null
      ? "--"
      : etaS < 60
        ? `${Math.ceil(etaS)}s`
        : `${Math.floor(etaS / 60)}m${Math.ceil(etaS % 60)}s`;
  return (
    `${s.done}/${s.total} samples | ETA ${eta} | ${fmtTokens(s.promptTokens + s.completionTokens)} tok | ` +
    `$${s.costUsd.toFixed(4)} | ${s.retries} retries | ${s.failedRequests} failed | ${s.cacheHits} cached`
  );
}

/**
 * A progress bar on a terminal; plain lines every few seconds elsewhere (CI logs).
 * ETA is from the rate of samples done in this process, so a resumed run estimates honestly.
 */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): ProgressSink {
  const tty = stream.isTTY === true;
  let bar: cliProgress.SingleBar | undefined;
  let t0 = 0;
  let startDone = 0;
  let lastPrint = 0;
  let last: ProgressState | undefined;
  const eta = (s: ProgressState) => {
    const rate = (s.done - startDone) / ((performance.now() - t0) / 1000);
    return rate > 0 ? (s.total - s.done) / rate : null;
  };
  return {
    start(s) {
      last = s;
      t0 = performance.now();
      startDone = s.done;
      if (tty) {
        bar = new cliProgress.SingleBar(
          { format: "{bar} {line}", stream, hideCursor: true, clearOnComplete: false, etaBuffer: 50 },
          cliProgress.Presets.shades_classic,
        );
        bar.start(s.total, s.done, { line: line(s, null) });
      } else {
        stream.write(`${line(s, null)}\n`);
      }
    },
    update(s) {
      last = s;
      if (bar) bar.update(s.done, { line: line(s, eta(s)) });
      else if (performance.now() - lastPrint > 5000) {
        lastPrint = performance.now();
        stream.write(`${line(s, eta(s))}\n`);
      }
    },
    log(text) {
      // The bar owns the last line: clear it, print above, redraw.
      if (bar) stream.write("\r\x1b[K");
      stream.write(`${text}\n`);
      if (bar && last) bar.update(last.done, { line: line(last, eta(last)) });
    },
    stop() {
      if (bar) bar.stop();
      else if (last) stream.write(`${line(last, eta(last))}\n`);
    },
  };
}

export const silentProgress: ProgressSink = { start() {}, update() {}, log() {}, stop() {} };
