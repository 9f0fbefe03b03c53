/**
 * Reads a request body into 1 MiB blocks with a BYOB reader: the server (http1_server.ts)
 * reads the socket straight into the block, and whole blocks mean a sixteenth of the hash
 * updates and file writes per byte of 64 KiB chunks (what Deno.serve gave a default reader). Measured at 1 GiB on
 * loopback with hashing and writing: 64 KiB chunks ~200-400 MB/s, 1 MiB blocks ~700-950 MB/s.
 * A small body that arrived with its headers is not a byte stream (no BYOB): it is copied.
 *
 * Every block is read into the same 1 MiB of memory: a block is valid until the next one is
 * asked for (ByteSource's contract, lib/store/storage.ts). A fresh buffer per block costs a
 * gigabyte of new memory per gigabyte uploaded, and garbage collections to free it: measured
 * per GiB, 4k-50k page faults and 0.5-1.5 s of server kernel time with fresh buffers, ~1k
 * and ~0.5 s with one (to tmpfs: ~550 MB/s then, ~840 MB/s now). Ending the iteration early
 * (`return()`, also before the first block) cancels the body, so its sender is told to stop.
 */
const BLOCK = 1 << 20;

type Block = Uint8Array<ArrayBuffer>;

/**
 * Reads into `block` at `offset`. The block comes back as a new view (a BYOB read moves its
 * buffer), or as null once the body ended and the buffer is gone (the read was cancelled).
 */
type ReadInto = (
  block: Block,
  offset: number,
) => Promise<{ block: Block | null; n: number; done: boolean }>;

/** Blocks of `body`; a request without one (`null`) has no blocks. */
export function bodyBlocks(
  body: ReadableStream<Uint8Array> | null,
  onBytes: (bytes: number) => void,
  blockSize = BLOCK,
): AsyncIterableIterator<Uint8Array> {
  let reader: ReadableStreamBYOBReader | ReadableStreamDefaultReader<Uint8Array> | undefined;
  let readInto: ReadInto | undefined;
  let buffer: Block | undefined;
  let finished = body === null;
  const iterator: AsyncIterableIterator<Uint8Array> = {
    [Symbol.asyncIterator]: () => iterator,
    async next(): Promise<IteratorResult<Uint8Array>> {
      if (finished) return { done: true, value: undefined };
      if (readInto === undefined) {
        try {
          const byob = body!.getReader({ mode: "byob" });
          reader = byob;
          readInto = byobReadInto(byob);
        } catch {
          const chunks = body!.getReader();
          reader = chunks;
          readInto = copyingReadInto(chunks);
        }
      }
      // The consumer is done with the previous block (it asked for this one): read over it.
      let block: Block = buffer ?? new Uint8Array(blockSize);
      buffer = undefined;
      let filled = 0;
      while (filled < blockSize) {
        let result: Awaited<ReturnType<ReadInto>>;
        try {
          result = await readInto(block, filled);
        } catch (error) {
          finished = true;
          throw error;
        }
        if (result.block === null) {
          finished = true;
          return { done: true, value: undefined };
        }
        block = result.block;
        filled += result.n;
        onBytes(result.n);
        if (result.done) {
          finished = true;
          break;
        }
      }
      buffer = block;
      if (filled === 0) return { done: true, value: undefined };
      return { done: false, value: block.subarray(0, filled) };
    },
    async return(): Promise<IteratorResult<Uint8Array>> {
      if (!finished) {
        finished = true;
        await (reader ?? body!).cancel().catch(() => {});
      }
      return { done: true, value: undefined };
    },
  };
  return iterator;
}

function byobReadInto(reader: ReadableStreamBYOBReader): ReadInto {
  return async (block, offset) => {
    const size = block.length;
    // The read takes the buffer over (detaching `block`) and hands it back as `value.buffer`.
    const { value, done } = await reader.read(block.subarray(offset));
    if (value === undefined) return { block: null, n: 0, done: true };
    return { block: new Uint8Array(value.buffer, 0, size), n: done ? 0 : value.length, done };
  };
}

function copyingReadInto(reader: ReadableStreamDefaultReader<Uint8Array>): ReadInto {
  let pending: Uint8Array = new Uint8Array(0);
  return async (block, offset) => {
    while (pending.length === 0) {
      const { value, done } = await reader.read();
      if (done) return { block, n: 0, done: true };
      pending = value;
    }
    const n = Math.min(pending.length, block.length - offset);
    block.set(pending.subarray(0, n), offset);
    pending = pending.subarray(n);
    return { block, n, done: false };
  };
}
