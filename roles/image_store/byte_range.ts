/**
 * Interprets a `Range` request header against a file of known size (RFC 9110 section 14).
 * Only single byte ranges are honoured; a multi-range or malformed header is ignored (the full
 * file is served), which the RFC allows and every client copes with. A range that starts past the
 * end is unsatisfiable (416).
 */

/** What to send: the whole file, one inclusive byte range, or 416. */
export type RangeDecision =
  | { kind: "full" }
  | { kind: "partial"; start: number; end: number }
  | { kind: "unsatisfiable" };

const SINGLE_RANGE = /^bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/i;

export function decideRange(header: string | null, size: number): RangeDecision {
  if (header === null) return { kind: "full" };
  const match = SINGLE_RANGE.exec(header);
  if (match === null) return { kind: "full" };
  const [, first, last] = match;
  if (first === "" && last === "") return { kind: "full" };
  if (first === "") {
    // Suffix range `bytes=-N`: the last N bytes.
    const length = Number(last);
    if (length === 0) return { kind: "unsatisfiable" };
    return size === 0
      ? { kind: "unsatisfiable" }
      : { kind: "partial", start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (!Number.isSafeInteger(start) || start >= size) return { kind: "unsatisfiable" };
  if (end < start) return { kind: "full" }; // An invalid range is ignored.
  return { kind: "partial", start, end };
}
