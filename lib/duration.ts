/**
 * Durations as users write them: `30m`, `7d`, `10s`, `1.5h`, `250ms`; a bare number means
 * seconds. Parsed to milliseconds.
 */
import { z } from "zod";
import { TmlError } from "./errors.ts";

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const PATTERN = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d|w)?\s*$/;

const EXPECTED = `expected a duration such as "30m", "7d", "10s", "1.5h" or a number of seconds`;

function toMs(text: string): number | undefined {
  const match = PATTERN.exec(text);
  return match === null ? undefined : Math.round(Number(match[1]) * UNIT_MS[match[2] ?? "s"]);
}

/** Parses a duration to milliseconds; `field` names the input in the error. */
export function parseDuration(text: string, field = "duration"): number {
  const ms = toMs(text);
  if (ms === undefined) {
    throw new TmlError("invalid_duration", `Invalid ${field}: ${EXPECTED}, got "${text}"`, {
      status: 400,
      field,
    });
  }
  return ms;
}

/** Formats milliseconds for people: `1h30m`, `2.5s`, `250ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1_000).toFixed(1))}s`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1_000);
  for (const [unit, seconds] of [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]] as const) {
    if (rest >= seconds) {
      parts.push(`${Math.floor(rest / seconds)}${unit}`);
      rest %= seconds;
    }
  }
  return parts.join("");
}

/** A duration in a config file or request body: a string as above, or a number of seconds. */
export const Duration = z.union([z.string(), z.number().nonnegative()]).transform(
  (value, ctx) => {
    if (typeof value === "number") return Math.round(value * 1_000);
    const ms = toMs(value);
    if (ms === undefined) {
      ctx.addIssue({ code: "custom", message: `${EXPECTED}, got "${value}"` });
      return z.NEVER;
    }
    return ms;
  },
);
