/**
 * Framed JSON over a byte stream, used at both ends of the supervisor-puppet channel (a
 * virtio-serial port, a TCP or unix socket) and by the puppet's local control socket.
 *
 * A frame is one JSON value followed by "\n". `JSON.stringify` escapes every newline inside a
 * value, so a frame never contains a raw newline. Newline framing was chosen over a length
 * prefix because a reader resynchronises at the next newline after a damaged frame (a serial
 * port may deliver boot noise before the puppet starts) and because a captured channel is
 * readable by a person. Frames longer than `maxBytes` end the channel: past that limit the
 * peer is broken or hostile, and skipping would mean buffering without bound.
 */
import type { z } from "zod";
import { TmlError } from "../errors.ts";
import { formatZodError } from "../zod_issues.ts";

export class FrameError extends TmlError {
  constructor(message: string) {
    super("invalid_frame", message, { status: 400 });
  }
}

/** What a framed channel runs over; `Deno.Conn` and an opened character device fit. */
export interface ByteStream {
  readonly readable: ReadableStream<Uint8Array>;
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

const NEWLINE = 0x0a;

/** Encodes one message as a frame; throws a FrameError when it would exceed `maxBytes`. */
export function encodeFrame(message: unknown, maxBytes: number): Uint8Array {
  const bytes = new TextEncoder().encode(JSON.stringify(message) + "\n");
  if (bytes.length - 1 > maxBytes) {
    throw new FrameError(`Cannot send frame: it is ${bytes.length - 1} bytes, over ${maxBytes}`);
  }
  return bytes;
}

export interface ReadFramesOptions {
  /** Largest frame accepted, in bytes without the newline. */
  maxBytes: number;
  /** Told about each skipped frame (not JSON, or not matching the schema); never its content. */
  onInvalid?: (detail: string) => void;
}

/**
 * Yields the valid messages of a stream in order. A frame that is not JSON or fails the schema
 * is reported through `onInvalid` and skipped; an oversized frame throws a FrameError.
 */
export async function* readFrames<T extends z.ZodType>(
  stream: ReadableStream<Uint8Array>,
  schema: T,
  options: ReadFramesOptions,
): AsyncGenerator<z.infer<T>> {
  // Bytes of the frame being assembled, kept as parts so a large frame is copied once.
  let parts: Uint8Array[] = [];
  let pending = 0;
  const tooLong = () =>
    new FrameError(`Cannot read channel: a frame exceeds ${options.maxBytes} bytes`);
  for await (const chunk of stream) {
    let start = 0;
    let newline: number;
    while ((newline = chunk.indexOf(NEWLINE, start)) >= 0) {
      const tail = chunk.subarray(start, newline);
      start = newline + 1;
      if (pending + tail.length > options.maxBytes) throw tooLong();
      const frame = parts.length === 0 ? tail : join([...parts, tail], pending + tail.length);
      parts = [];
      pending = 0;
      const decoded = decodeFrame(frame, schema);
      if (decoded === undefined) continue;
      if (decoded.ok) yield decoded.value;
      else options.onInvalid?.(decoded.detail);
    }
    if (start < chunk.length) {
      // Copy: the stream may reuse the chunk's buffer for its next read.
      parts.push(chunk.slice(start));
      pending += chunk.length - start;
      if (pending > options.maxBytes) throw tooLong();
    }
  }
  if (pending > 0) options.onInvalid?.("the channel closed in the middle of a frame");
}

function decodeFrame<T extends z.ZodType>(
  frame: Uint8Array,
  schema: T,
): { ok: true; value: z.infer<T> } | { ok: false; detail: string } | undefined {
  const text = new TextDecoder().decode(frame).trim();
  if (text === "") return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, detail: `a frame of ${frame.length} bytes is not valid JSON` };
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, detail: formatZodError(parsed.error, "channel frame").split("\n")[0] };
}

function join(parts: Uint8Array[], length: number): Uint8Array {
  const joined = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
}

/**
 * One end of a framed channel: validated incoming messages of schema `In`, outgoing messages of
 * type `Out`. Sends are serialised and written in full, so concurrent senders (a heartbeat
 * timer and a workload's output) never interleave bytes of two frames.
 */
export class FramedChannel<In extends z.ZodType, Out> {
  readonly #stream: ByteStream;
  readonly #maxBytes: number;
  readonly #frames: AsyncGenerator<z.infer<In>>;
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(stream: ByteStream, schema: In, options: ReadFramesOptions) {
    this.#stream = stream;
    this.#maxBytes = options.maxBytes;
    this.#frames = readFrames(stream.readable, schema, options);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The next valid message, or undefined when the channel has ended. */
  async receive(): Promise<z.infer<In> | undefined> {
    if (this.#closed) return undefined;
    try {
      const next = await this.#frames.next();
      return next.done ? undefined : next.value;
    } catch (error) {
      if (error instanceof FrameError) throw error;
      // The transport failed (reset, closed under us): that is the end of the channel.
      return undefined;
    }
  }

  /** Sends one message; rejects when it is too large or the channel is closed or broken. */
  send(message: Out): Promise<void> {
    const frame = encodeFrame(message, this.#maxBytes);
    const write = this.#writing.then(async () => {
      if (this.#closed) throw new FrameError("Cannot send frame: the channel is closed");
      for (let at = 0; at < frame.length;) {
        at += await this.#stream.write(frame.subarray(at));
      }
    });
    // A failed send must not poison the sends queued behind it.
    this.#writing = write.catch(() => {});
    return write;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#stream.close();
    } catch {
      // Already closed by the peer.
    }
  }
}
