import { assertEquals, assertRejects } from "../../lib/testing/asserts.ts";
import { bodyBlocks } from "./body_blocks.ts";

/**
 * A body sending `chunks` one per pull: a byte stream, as Deno.serve gives for a body still
 * arriving, or a plain stream, as it gives for a small body that came with the headers.
 */
function byteStream(
  chunks: Uint8Array[],
  onCancel?: () => void,
  type: "bytes" | undefined = "bytes",
): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream({
    type,
    pull(controller) {
      if (next < chunks.length) {
        controller.enqueue(chunks[next++].slice());
        return;
      }
      controller.close();
      // A pending BYOB read is only answered once its buffer is handed back.
      if (type === "bytes") (controller as ReadableByteStreamController).byobRequest?.respond(0);
    },
    cancel: onCancel,
  });
}

/** Every block, copied as it comes (a block is only valid until the next one). */
async function collect(blocks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const copies: Uint8Array[] = [];
  for await (const block of blocks) copies.push(block.slice());
  return copies;
}

function counting(length: number, start = 0): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (start + i) % 251);
}

Deno.test("bodyBlocks() fills whole blocks from uneven chunks and keeps every byte", async () => {
  const whole = counting(10_000);
  const cuts = [0, 700, 3_000, 3_001, 9_999, 10_000];
  const chunks = cuts.slice(1).map((end, i) => whole.slice(cuts[i], end));
  let counted = 0;
  const blocks = await collect(bodyBlocks(byteStream(chunks), (n) => counted += n, 4096));
  assertEquals(blocks.map((block) => block.length), [4096, 4096, 1808]);
  const joined = new Uint8Array(10_000);
  blocks.reduce((at, block) => (joined.set(block, at), at + block.length), 0);
  assertEquals(joined, whole);
  assertEquals(counted, 10_000);
});

Deno.test("bodyBlocks() copies a body that is not a byte stream into blocks", async () => {
  const chunks = [counting(100), counting(5000, 100), counting(1, 5100)];
  let counted = 0;
  const blocks = await collect(
    bodyBlocks(byteStream(chunks, undefined, undefined), (n) => counted += n, 4096),
  );
  assertEquals(blocks.map((block) => block.length), [4096, 1005]);
  assertEquals([...blocks[0], ...blocks[1]], [...counting(5101)]);
  assertEquals(counted, 5101);
});

Deno.test("bodyBlocks() reads every block into the same memory, valid until the next", async () => {
  const blocks = bodyBlocks(byteStream([counting(3000), counting(3000, 3000)]), () => {}, 2048);
  const first = (await blocks.next()).value as Uint8Array;
  assertEquals(first, counting(2048));
  const copy = first.slice();
  const second = (await blocks.next()).value as Uint8Array;
  assertEquals(second, counting(2048, 2048));
  // The first block's memory went into the read of the second: its old view is detached.
  assertEquals(first.byteLength, 0);
  assertEquals(copy, counting(2048));
  assertEquals((await blocks.next()).value, counting(6000 - 4096, 4096));
  assertEquals((await blocks.next()).done, true);
});

Deno.test("bodyBlocks() yields nothing for an empty body or none", async () => {
  assertEquals(await collect(bodyBlocks(byteStream([]), () => {})), []);
  assertEquals(await collect(bodyBlocks(null, () => {})), []);
});

Deno.test("bodyBlocks() cancels the body when the consumer stops, even before reading", async () => {
  let cancelled = 0;
  const unread = bodyBlocks(byteStream([counting(10)], () => cancelled++), () => {});
  await unread.return!();
  assertEquals(cancelled, 1);

  const partly = bodyBlocks(byteStream([counting(4096), counting(4096)], () => cancelled++), () => {
  }, 4096);
  for await (const _block of partly) break;
  assertEquals(cancelled, 2);
});

Deno.test("bodyBlocks() passes on a body that fails", async () => {
  let sent = false;
  const failing = new ReadableStream<Uint8Array>({
    type: "bytes",
    pull(controller) {
      if (sent) controller.error(new Error("connection reset"));
      else controller.enqueue(counting(100));
      sent = true;
    },
  });
  await assertRejects(() => collect(bodyBlocks(failing, () => {})), Error, "reset");
});
