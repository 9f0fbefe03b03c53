/**
 * Copies bytes both ways between two byte streams (TCP connections, a user websocket, stdio)
 * until both directions have ended. A direction that reaches end-of-file half-closes the other
 * side, so protocols that rely on a half-close keep working through the proxy; an error in
 * either direction (a reset, a close from outside) ends both.
 *
 * Each direction is one read-then-write loop over one large buffer: measured on loopback,
 * 256 KiB buffers give the same throughput as double buffering or 1 MiB buffers, and flow
 * control is TCP's own, because a loop reads again only once its last write has completed.
 */

/** The part of `Deno.Conn` a splice needs; `WebSocketBytes` and stdio adapters have it too. */
export interface ByteStream {
  read(buffer: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  /** Ends this side's sending direction (a TCP half-close). */
  closeWrite(): Promise<void> | void;
  close(): void;
}

export const SPLICE_BUFFER_BYTES = 256 * 1024;

export type SpliceDirection = "a_to_b" | "b_to_a";

export interface SpliceOptions {
  bufferSize?: number;
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
    const buffer = new Uint8Array(options.bufferSize ?? SPLICE_BUFFER_BYTES);
    try {
      while (true) {
        const count = await from.read(buffer);
        if (count === null) break;
        await writeAll(to, buffer.subarray(0, count));
        options.onBytes?.(direction, count);
      }
      await to.closeWrite();
    } catch {
      closeBoth();
    }
  };
  await Promise.all([pump(a, b, "a_to_b"), pump(b, a, "b_to_a")]);
  closeBoth();
}
