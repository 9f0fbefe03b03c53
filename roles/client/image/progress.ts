/**
 * Progress of a transfer for people: on a terminal, a bar on stderr with bytes done, rate and
 * ETA (cli-progress); off a terminal, nothing, so scripts get quiet JSON on stdout only.
 */
import process from "node:process";
import cliProgress from "cli-progress";

export interface TransferProgress {
  /** Adds bytes moved. */
  add(bytes: number): void;
  /** Grows the total (work discovered along the way). */
  grow(bytes: number): void;
  stop(): void;
}

/**
 * A progress bar for `total` bytes (or other units, with `format`), or a silent one when
 * stderr is not a terminal.
 */
export function transferProgress(
  label: string,
  total: number,
  format: (amount: number) => string = formatBytes,
): TransferProgress {
  if (!Deno.stderr.isTerminal()) return { add() {}, grow() {}, stop() {} };
  const started = performance.now();
  let done = 0;
  let size = total;
  const bar = new cliProgress.SingleBar({
    format: `${label} [{bar}] {percentage}% {done}/{size} {rate} ETA {eta_formatted}`,
    stream: process.stderr,
    hideCursor: true,
    etaBuffer: 50,
    fps: 5,
  }, cliProgress.Presets.shades_classic);
  const payload = () => {
    const seconds = (performance.now() - started) / 1000;
    return {
      done: format(done),
      size: format(size),
      rate: seconds > 0 ? `${format(done / seconds)}/s` : "-",
    };
  };
  bar.start(Math.max(size, 1), 0, payload());
  return {
    add(bytes) {
      done += bytes;
      bar.update(done, payload());
    },
    grow(bytes) {
      size += bytes;
      bar.setTotal(Math.max(size, 1));
    },
    stop() {
      bar.update(done, payload());
      bar.stop();
    },
  };
}

/** `1.5 GiB`, `320 MiB`, `12 B`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0
    ? `${Math.round(value)} B`
    : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}
