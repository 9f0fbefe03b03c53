/**
 * Turns a request body (64 KiB chunks from Deno.serve) into 1 MiB blocks, reading up to
 * `aheadBytes` in advance. Bigger blocks mean a tenth of the hash updates and file writes per
 * byte, and the read-ahead keeps the socket drained while the consumer writes a block: the
 * platform notes measure what waiting on the disk between body reads costs an upload.
 * `onBytes` hears of every chunk as it arrives.
 */
const BLOCK = 1 << 20;

export function readAhead(
  body: ReadableStream<Uint8Array>,
  onBytes: (bytes: number) => void,
  aheadBytes = 8 * BLOCK,
): ReadableStream<Uint8Array> {
  let block = new Uint8Array(BLOCK);
  let filled = 0;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>(
      {
        transform(chunk, controller) {
          onBytes(chunk.length);
          let offset = 0;
          while (offset < chunk.length) {
            const n = Math.min(chunk.length - offset, BLOCK - filled);
            block.set(chunk.subarray(offset, offset + n), filled);
            filled += n;
            offset += n;
            if (filled === BLOCK) {
              controller.enqueue(block);
              block = new Uint8Array(BLOCK);
              filled = 0;
            }
          }
        },
        flush(controller) {
          if (filled > 0) controller.enqueue(block.subarray(0, filled));
        },
      },
      undefined,
      new ByteLengthQueuingStrategy({ highWaterMark: aheadBytes }),
    ),
  );
}
