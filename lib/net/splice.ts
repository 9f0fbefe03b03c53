/**
 * Copies bytes both ways between two byte streams (TCP connections, a user websocket, stdio)
 * until both directions have ended. A direction that reaches end-of-file half-closes the other
 * side, so protocols that rely on a half-close keep working through the proxy; an error in
 * either direction (a reset, a close from outside) ends both.
 *
 * Each direction is one read-then-write loop over one buffer, so flow control is TCP's own: a
 * loop reads again only once its last write has completed. The buffer starts small (an
 * interactive session never needs more) and doubles whenever a read fills it, up to
 * `MAX_BUFFER_BYTES`: with two relays in a row on loopback (rendezvous server and supervisor),
 * 1-4 MiB buffers carried ~30-40% more than 256 KiB ones (double buffering added nothing).
 */

/** The part of `Deno.Conn` a splice needs; `WebSocketBytes` and stdio adapters have it too. */
export interface ByteStream {
  read(buffer: Uint8Array): Promise<number | null>;
  /** The next bytes in a buffer of the stream's own, when it can hand them over uncopied. */
  readChunk?(): Promise<Uint8Array | null>;
  write(bytes: Uint8Array): Promise<number>;
  /** Ends this side's sending direction (a TCP half-close). */
  closeWrite(): Promise<void> | void;
  close(): void;
}

const FIRST_BUFFER_BYTES = 64 * 1024;
const MAX_BUFFER_BYTES = 4 * 1024 * 1024;

export type SpliceDirection = "a_to_b" | "b_to_a";

export interface SpliceOptions {
  /** Called after each chunk has been passed on. */
  onBytes?: (direction: SpliceDirection, bytes: number) => void;
}

/** Writes all of `bytes` (a write may take only part). */
export async function writeAll(stream: Pick<ByteStream, "write">, bytes: Uint8Array) {
  for (let offset = 0; offset < bytes.length;) {
    offset += await stream.write(bytes.subarray(offset));
  }
}

/** Copies both ways until both directions end or one fails; closes both streams at the end. */
export async function splice(a: ByteStream, b: ByteStream, options: SpliceOptions = {}) {
  const closeBoth = () => {
    for (const stream of [a, b]) {
      try {
        stream.close();
      } catch {
        // Already closed.
      }
    }
  };
  const pump = async (from: ByteStream, to: ByteStream, direction: SpliceDirection) => {
    const next = chunkReader(from);
    try {
      for (let chunk; (chunk = await next()) !== null;) {
        await writeAll(to, chunk);
        options.onBytes?.(direction, chunk.length);
      }
      await to.closeWrite();
    } catch {
      closeBoth();
    }
  };
  await Promise.all([pump(a, b, "a_to_b"), pump(b, a, "b_to_a")]);
  closeBoth();
}

/**
 * The stream's chunks, one per call: its own buffers when it can hand them over, else views of
 * one buffer, which doubles (once the previous chunk has been passed on) after a read fills it.
 */
function chunkReader(stream: ByteStream): () => Promise<Uint8Array | null> {
  if (stream.readChunk !== undefined) return () => stream.readChunk!();
  let buffer = new Uint8Array(FIRST_BUFFER_BYTES);
  let filled = false;
  return async () => {
    if (filled && buffer.length < MAX_BUFFER_BYTES) buffer = new Uint8Array(buffer.length * 2);
    const count = await stream.read(buffer);
    if (count === null) return null;
    filled = count === buffer.length;
    return buffer.subarray(0, count);
  };
}
