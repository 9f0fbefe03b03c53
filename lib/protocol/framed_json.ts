/**
 * Newline-delimited JSON framing over a byte stream, with a frame size limit and zod
 * validation of every frame. Used at both ends of the supervisor-puppet channel.
 */
import type { z } from "zod";
import { TmlError } from "../errors.ts";
import { formatZodError } from "../zod_issues.ts";

export class FrameError extends TmlError {
  constructor(message: string) {
    super("invalid_frame", message, { status: 400 });
  }
}

/** Encodes one message as a frame. */
export function encodeFrame(message: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(message) + "\n");
}

/**
 * Reads validated messages from a stream. A frame that is too long or not valid JSON ends the
 * stream with a FrameError; one that fails the schema is reported through `onInvalid` and
 * skipped, so one bad message does not cut the channel.
 */
export async function* readFrames<T extends z.ZodType>(
  stream: ReadableStream<Uint8Array>,
  schema: T,
  options: { maxBytes: number; onInvalid?: (detail: string) => void },
): AsyncGenerator<z.infer<T>> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of stream) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.trim() === "") continue;
      let raw: unknown;
      try {
        raw = JSON.parse(line);
      } catch {
        throw new FrameError("Cannot read channel: a frame is not valid JSON");
      }
      const parsed = schema.safeParse(raw);
      if (parsed.success) yield parsed.data;
      else options.onInvalid?.(formatZodError(parsed.error, "channel frame"));
    }
    if (buffer.length > options.maxBytes) {
      throw new FrameError(`Cannot read channel: a frame exceeds ${options.maxBytes} bytes`);
    }
  }
}
