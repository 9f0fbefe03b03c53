import { assertEquals } from "../../lib/testing/asserts.ts";
import { decideRange } from "./byte_range.ts";

Deno.test("decideRange() serves the full file without a header or with one it ignores", () => {
  assertEquals(decideRange(null, 100), { kind: "full" });
  assertEquals(decideRange("bytes=0-1,5-6", 100), { kind: "full" });
  assertEquals(decideRange("items=0-5", 100), { kind: "full" });
  assertEquals(decideRange("bytes=9-3", 100), { kind: "full" });
  assertEquals(decideRange("bytes=-", 100), { kind: "full" });
});

Deno.test("decideRange() honours closed, open and suffix ranges", () => {
  assertEquals(decideRange("bytes=0-9", 100), { kind: "partial", start: 0, end: 9 });
  assertEquals(decideRange("bytes=90-", 100), { kind: "partial", start: 90, end: 99 });
  assertEquals(decideRange("bytes=90-1000", 100), { kind: "partial", start: 90, end: 99 });
  assertEquals(decideRange("bytes=-10", 100), { kind: "partial", start: 90, end: 99 });
  assertEquals(decideRange("bytes=-1000", 100), { kind: "partial", start: 0, end: 99 });
  assertEquals(decideRange("Bytes = 5 - 5", 100), { kind: "partial", start: 5, end: 5 });
});

Deno.test("decideRange() refuses ranges that start past the end", () => {
  assertEquals(decideRange("bytes=100-", 100), { kind: "unsatisfiable" });
  assertEquals(decideRange("bytes=100-200", 100), { kind: "unsatisfiable" });
  assertEquals(decideRange("bytes=0-", 0), { kind: "unsatisfiable" });
  assertEquals(decideRange("bytes=-0", 100), { kind: "unsatisfiable" });
  assertEquals(decideRange("bytes=-5", 0), { kind: "unsatisfiable" });
});
