import fc from "fast-check";
import { z } from "zod";
import { assertEquals, assertThrows } from "./testing/asserts.ts";
import { TmlError } from "./errors.ts";
import { Duration, formatDuration, parseDuration } from "./duration.ts";

const EXPECTED = `expected a duration such as "30m", "7d", "10s", "1.5h" or a number of seconds`;

Deno.test("parseDuration() reads units, compounds and bare seconds to milliseconds", () => {
  const cases: Array<[string, number]> = [
    ["30m", 1_800_000],
    ["7d", 604_800_000],
    ["10s", 10_000],
    ["1.5h", 5_400_000],
    ["250ms", 250],
    ["2w", 1_209_600_000],
    ["90", 90_000],
    ["0.25", 250],
    [".5s", 500],
    ["0", 0],
    ["1h30m", 5_400_000],
    ["1h 30m", 5_400_000],
    ["1d2h3m4s", 93_784_000],
    ["1m30.5s", 90_500],
    ["  10 s ", 10_000],
    ["1.5ms", 2],
  ];
  for (const [text, ms] of cases) assertEquals(parseDuration(text), ms, text);
});

Deno.test("parseDuration() refuses negatives and garbage with an error naming the field", () => {
  const cases: Array<[string, string]> = [
    ["", EXPECTED],
    ["abc", EXPECTED],
    ["10 minutes", EXPECTED],
    ["5x", EXPECTED],
    ["1.s", EXPECTED],
    ["1e3", EXPECTED],
    ["s", EXPECTED],
    ["1h-30m", EXPECTED],
    ["30m!", EXPECTED],
    ["-5m", "a duration must not be negative"],
    [" -1", "a duration must not be negative"],
    ["99999999999999999999d", "the duration is too long"],
  ];
  for (const [text, detail] of cases) {
    const error = assertThrows(() => parseDuration(text, "--timeout"), TmlError);
    assertEquals(error.message, `Cannot parse --timeout "${text}": ${detail}`);
    assertEquals([error.code, error.status, error.field], ["invalid_duration", 400, "--timeout"]);
  }
  const unnamed = assertThrows(() => parseDuration("soon"), TmlError);
  assertEquals(unnamed.message, `Cannot parse duration "soon": ${EXPECTED}`);
});

Deno.test("formatDuration() prints ms, tenths of seconds, then whole units", () => {
  const cases: Array<[number, string]> = [
    [0, "0ms"],
    [250, "250ms"],
    [999.4, "999ms"],
    [999.6, "1s"],
    [1_500, "1.5s"],
    [2_000, "2s"],
    [59_949, "59.9s"],
    [59_950, "1m"],
    [90_000, "1m30s"],
    [90_500, "1m31s"],
    [5_400_000, "1h30m"],
    [604_800_000, "7d"],
    [93_784_000, "1d2h3m4s"],
    [86_405_000, "1d5s"],
    [-2_500, "-2.5s"],
    [NaN, "NaN"],
  ];
  for (const [ms, text] of cases) assertEquals(formatDuration(ms), text, String(ms));
});

const milliseconds = fc.oneof(
  fc.integer({ min: 0, max: 999 }),
  fc.integer({ min: 1_000, max: 60_000 }),
  fc.integer({ min: 60_000, max: 400 * 86_400_000 }),
);

Deno.test("formatDuration() prints what parseDuration() reads back, within its rounding", () => {
  fc.assert(
    fc.property(milliseconds, (ms) => {
      const text = formatDuration(ms);
      const tolerance = ms < 1_000 ? 0 : ms < 60_000 ? 50 : 500;
      const back = parseDuration(text);
      assertEquals(Math.abs(back - ms) <= tolerance, true, `${ms} -> ${text} -> ${back}`);
      assertEquals(formatDuration(back), text);
    }),
    { numRuns: 2_000 },
  );
});

Deno.test("Duration accepts a duration string or a number of seconds, as milliseconds", () => {
  const Body = z.object({ timeout: Duration.optional(), wait: Duration.default(30_000) });
  assertEquals(Body.parse({ timeout: "1h30m" }), { timeout: 5_400_000, wait: 30_000 });
  assertEquals(Body.parse({ timeout: 1.5, wait: "2m" }), { timeout: 1_500, wait: 120_000 });
  assertEquals(Body.parse({}), { wait: 30_000 });
  const cases: Array<[unknown, string]> = [
    ["soon", EXPECTED],
    ["-3s", "a duration must not be negative"],
    [-3, "a duration must not be negative"],
    [true, EXPECTED],
    [Infinity, EXPECTED],
  ];
  for (const [timeout, message] of cases) {
    const issues = Body.safeParse({ timeout }).error?.issues;
    assertEquals(issues?.map((issue) => [issue.path, issue.message]), [[["timeout"], message]]);
  }
});
