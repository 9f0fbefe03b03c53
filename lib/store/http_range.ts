/**
 * HTTP byte ranges for store files (RFC 9110 §14): parsing a request's single `Range` header
 * into the inclusive ByteRange that StoreBackend.openRead takes, and the `Content-Range`
 * header of the answer in both directions.
 */
import { StoreError } from "./errors.ts";
import type { ByteRange } from "./storage.ts";

const SINGLE_RANGE = /^bytes=(\d*)-(\d*)$/;

/**
 * The range a `Range` header asks of a `size`-byte file. Undefined means "send it all": no
 * header, or a form servers may ignore (several ranges, another unit). Throws StoreError
 * `invalid_range` (416) for a range the file cannot satisfy.
 */
export function parseRangeHeader(header: string | null, size: number): ByteRange | undefined {
  if (header === null) return undefined;
  const match = SINGLE_RANGE.exec(header.trim());
  if (match === null || (match[1] === "" && match[2] === "")) return undefined;
  const [, first, last] = match;
  let range: ByteRange;
  if (first === "") {
    // `bytes=-n`: the last n bytes.
    range = { start: Math.max(0, size - Number(last)), end: size - 1 };
  } else {
    const start = Number(first);
    const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
    if (last !== "" && Number(last) < start) return undefined;
    range = { start, end };
  }
  if (range.start >= size || range.start > range.end) {
    throw new StoreError(
      "invalid_range",
      `Cannot serve range "${header}": the file has ${size} bytes`,
    );
  }
  return range;
}

/** `bytes start-end/size`, the Content-Range of a 206 answer. */
export function contentRangeHeader(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`;
}

/** Parses a 206 answer's `Content-Range: bytes start-end/size` (size may be `*`). */
export function parseContentRange(
  header: string | null,
): { start: number; end: number; size?: number } | undefined {
  const match = header === null ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim());
  if (match === null) return undefined;
  const [, start, end, size] = match;
  return {
    start: Number(start),
    end: Number(end),
    ...(size === "*" ? {} : { size: Number(size) }),
  };
}
