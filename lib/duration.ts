/**
 * Durations as people write them, in milliseconds: `30m`, `7d`, `10s`, `1.5h`, `250ms`, `2w`,
 * compounds such as `1h30m` (what `formatDuration` prints), and a bare number meaning seconds
 * (Treadmill's CLI contract). `Duration` is the same rule as a zod schema for config files,
 * flags and request bodies, where a JSON number also means seconds.
 */
import { z } from "zod";
import { TmlError } from "./errors.ts";

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

const NUMBER = String.raw`(?:\d+(?:\.\d+)?|\.\d+)`;
const BARE_SECONDS = new RegExp(`^${NUMBER}$`);
// `ms` before `m`, so that `250ms` is not read as 250 minutes and a stray `s`.
const PART = new RegExp(`(${NUMBER})\\s*(ms|s|m|h|d|w)\\s*`, "y");

const EXAMPLES = `a duration such as "30m", "7d", "10s", "1.5h" or a number of seconds`;

/** Milliseconds, or what is wrong with `text` (the detail after the colon of a message). */
function readDuration(text: string): number | string {
  const trimmed = text.trim();
  if (trimmed.startsWith("-")) return "a duration must not be negative";
  let ms = 0;
  if (BARE_SECONDS.test(trimmed)) {
    ms = Number(trimmed) * UNIT_MS.s;
  } else {
    PART.lastIndex = 0;
    let match: RegExpExecArray | null;
    while ((match = PART.exec(trimmed)) !== null) {
      ms += Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
      if (PART.lastIndex === trimmed.length) break;
    }
    if (match === null) return `expected ${EXAMPLES}`;
  }
  return checkedMs(Math.round(ms));
}

function checkedMs(ms: number): number | string {
  return Number.isSafeInteger(ms) ? ms : "the duration is too long";
}

/** Parses a duration to milliseconds; `field` names the input in the error (e.g. `--timeout`). */
export function parseDuration(text: string, field = "duration"): number {
  const result = readDuration(text);
  if (typeof result === "string") {
    throw new TmlError("invalid_duration", `Cannot parse ${field} "${text}": ${result}`, {
      status: 400,
      field,
    });
  }
  return result;
}

/**
 * Formats milliseconds for people, in the form `parseDuration` reads: `250ms`, `2.5s` (tenths
 * below a minute), `1h30m`, `7d`, `1d2h3m4s` (whole seconds from a minute on).
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (Math.round(ms) < 1_000) return `${Math.round(ms)}ms`;
  const tenths = Math.round(ms / 100);
  if (tenths < 600) return `${tenths / 10}s`;
  let seconds = Math.round(ms / 1_000);
  let text = "";
  for (const unit of ["d", "h", "m", "s"] as const) {
    const size = UNIT_MS[unit] / 1_000;
    if (seconds >= size) {
      text += `${Math.floor(seconds / size)}${unit}`;
      seconds %= size;
    }
  }
  return text;
}

/** A duration in a config file, flag, query string or request body, parsed to milliseconds. */
export const Duration = z
  .union([z.string(), z.number()], { error: `expected ${EXAMPLES}` })
  .transform((value, context) => {
    const result = typeof value === "number" ? fromSeconds(value) : readDuration(value);
    if (typeof result === "string") {
      context.addIssue({ code: "custom", message: result });
      return z.NEVER;
    }
    return result;
  })
  .meta({
    description: `A duration such as "30m", "7d", "1.5h" or "1h30m", or a number of seconds`,
  });

function fromSeconds(seconds: number): number | string {
  if (seconds < 0) return "a duration must not be negative";
  return checkedMs(Math.round(seconds * 1_000));
}
