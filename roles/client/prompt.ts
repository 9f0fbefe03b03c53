/**
 * Asks the person at the terminal for a line, on stderr so stdout stays machine output; with
 * `hidden`, in raw mode without echo (for passwords).
 */
import { TmlError } from "../../lib/errors.ts";

const ENTER = new Set([10, 13]);
const CTRL_C = 3;
const CTRL_D = 4;
const BACKSPACE = new Set([8, 127]);

export async function promptLine(
  message: string,
  options: { hidden?: boolean } = {},
): Promise<string> {
  const encoder = new TextEncoder();
  await Deno.stderr.write(encoder.encode(message));
  if (options.hidden === true) Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  const buffer = new Uint8Array(1);
  try {
    while (true) {
      const read = await Deno.stdin.read(buffer);
      if (read === null || ENTER.has(buffer[0]) || buffer[0] === CTRL_D) break;
      if (buffer[0] === CTRL_C) {
        throw new TmlError("interrupted", "Cannot read input: interrupted", { status: 400 });
      }
      if (options.hidden === true && BACKSPACE.has(buffer[0])) {
        // Drop one character: its UTF-8 continuation bytes, then its first byte.
        while (bytes.length > 0 && (bytes[bytes.length - 1] & 0xc0) === 0x80) bytes.pop();
        bytes.pop();
      } else {
        bytes.push(buffer[0]);
      }
    }
  } finally {
    if (options.hidden === true) {
      Deno.stdin.setRaw(false);
      await Deno.stderr.write(encoder.encode("\n"));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
