import { assertEquals, assertThrows } from "../testing/asserts.ts";
import { StoreError } from "./errors.ts";
import { contentRangeHeader, parseContentRange, parseRangeHeader } from "./http_range.ts";

Deno.test("parseRangeHeader() reads the single-range forms", () => {
  assertEquals(parseRangeHeader(null, 100), undefined);
  assertEquals(parseRangeHeader("bytes=0-9", 100), { start: 0, end: 9 });
  assertEquals(parseRangeHeader("bytes=90-", 100), { start: 90, end: 99 });
  assertEquals(parseRangeHeader("bytes=90-1000", 100), { start: 90, end: 99 });
  assertEquals(parseRangeHeader("bytes=-10", 100), { start: 90, end: 99 });
  assertEquals(parseRangeHeader("bytes=-1000", 100), { start: 0, end: 99 });
});

Deno.test("parseRangeHeader() ignores forms a server may ignore", () => {
  for (const header of ["bytes=0-1,5-6", "items=0-1", "bytes=-", "bytes=5-2", "garbage"]) {
    assertEquals(parseRangeHeader(header, 100), undefined, header);
  }
});

Deno.test("parseRangeHeader() refuses unsatisfiable ranges with invalid_range", () => {
  for (const header of ["bytes=100-", "bytes=100-200", "bytes=-0"]) {
    const error = assertThrows(() => parseRangeHeader(header, 100), StoreError, "100 bytes");
    assertEquals(error.status, 416);
  }
  assertThrows(() => parseRangeHeader("bytes=0-", 0), StoreError);
});

Deno.test("contentRangeHeader() and parseContentRange() agree", () => {
  const header = contentRangeHeader({ start: 5, end: 9 }, 10);
  assertEquals(header, "bytes 5-9/10");
  assertEquals(parseContentRange(header), { start: 5, end: 9, size: 10 });
  assertEquals(parseContentRange("bytes 0-0/*"), { start: 0, end: 0 });
  assertEquals(parseContentRange("bytes */10"), undefined);
  assertEquals(parseContentRange(null), undefined);
});
