import fc from "fast-check";
import { assertEquals } from "../../lib/testing/asserts.ts";
import { StreamRedactor } from "./console_redaction.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function redactInChunks(secrets: string[], text: string, cuts: number[]): string {
  const redactor = new StreamRedactor(secrets);
  const bytes = encode(text);
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: number[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    out.push(...redactor.push(bytes.slice(start, point)));
    start = point;
  }
  out.push(...redactor.flush());
  return decode(Uint8Array.from(out));
}

Deno.test("StreamRedactor redacts a secret split across chunks", () => {
  assertEquals(redactInChunks(["hunter2"], "pw=hunter2 ok", [5, 6]), "pw=[redacted] ok");
  assertEquals(redactInChunks(["abc", "abcdef"], "xabcdefy abc", [3]), "x[redacted]y [redacted]");
});

Deno.test("StreamRedactor agrees with a whole-string replacement wherever the stream is cut", () => {
  fc.assert(fc.property(
    fc.constantFrom("s3cr3t", "tok", "ééé"),
    fc.array(fc.constantFrom("a", " ", "s3", "cr3t", "tok", "é", "\n"), { maxLength: 30 }),
    fc.array(fc.nat(200), { maxLength: 8 }),
    (secret, parts, cuts) => {
      const text = parts.join("");
      assertEquals(redactInChunks([secret], text, cuts), text.replaceAll(secret, "[redacted]"));
    },
  ));
});

Deno.test("StreamRedactor without secrets passes bytes through at once", () => {
  const redactor = new StreamRedactor([]);
  assertEquals(decode(redactor.push(encode("hello"))), "hello");
  assertEquals(redactor.flush().length, 0);
});
