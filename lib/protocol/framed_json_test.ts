import { z } from "zod";
import { assert, assertEquals, assertRejects, assertThrows } from "../testing/asserts.ts";
import { encodeFrame, FramedChannel, FrameError, readFrames } from "./framed_json.ts";

const Message = z.strictObject({ type: z.literal("note"), text: z.string() });

function streamOf(...chunks: Array<string | Uint8Array>): ReadableStream<Uint8Array> {
  return ReadableStream.from(
    chunks.map((chunk) => typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk),
  );
}

async function collect(
  stream: ReadableStream<Uint8Array>,
  maxBytes = 1024,
): Promise<{ messages: unknown[]; invalid: string[] }> {
  const messages: unknown[] = [];
  const invalid: string[] = [];
  for await (
    const message of readFrames(stream, Message, {
      maxBytes,
      onInvalid: (detail) => invalid.push(detail),
    })
  ) {
    messages.push(message);
  }
  return { messages, invalid };
}

Deno.test("encodeFrame() writes one JSON line whose newlines are escaped", () => {
  const frame = new TextDecoder().decode(encodeFrame({ type: "note", text: "a\nb" }, 1024));
  assertEquals(frame, '{"type":"note","text":"a\\nb"}\n');
  assertEquals(frame.indexOf("\n"), frame.length - 1);
});

Deno.test("encodeFrame() refuses a message over the frame limit", () => {
  assertThrows(() => encodeFrame({ type: "note", text: "x".repeat(100) }, 50), FrameError);
});

Deno.test("readFrames() reassembles frames split across chunks and several in one chunk", async () => {
  const { messages, invalid } = await collect(
    streamOf(
      '{"type":"no',
      'te","text":"1"}\n{"type":"note","text":"2"}\n{"type"',
      ':"note","text":"3"}\n',
    ),
  );
  assertEquals(messages, [
    { type: "note", text: "1" },
    { type: "note", text: "2" },
    { type: "note", text: "3" },
  ]);
  assertEquals(invalid, []);
});

Deno.test("readFrames() keeps multi-byte characters split between chunks intact", async () => {
  const bytes = new TextEncoder().encode('{"type":"note","text":"héllo ✓"}\n');
  const cut = bytes.indexOf(0xc3) + 1; // inside the two bytes of "é"
  const { messages } = await collect(streamOf(bytes.slice(0, cut), bytes.slice(cut)));
  assertEquals(messages, [{ type: "note", text: "héllo ✓" }]);
});

Deno.test("readFrames() skips garbage and schema mismatches, reporting each, and goes on", async () => {
  const { messages, invalid } = await collect(
    streamOf(
      "boot noise from a serial console\n",
      '{"type":"note","text":"ok"}\n',
      '{"type":"other"}\n',
      '{"type":"note","text":"ok","extra":1}\n',
      "\n\r\n",
      '{"type":"note","text":"still ok"}\r\n',
    ),
  );
  assertEquals(messages, [{ type: "note", text: "ok" }, { type: "note", text: "still ok" }]);
  assertEquals(invalid.length, 3);
  assert(invalid[0].includes("not valid JSON"), invalid[0]);
  assert(!invalid.join(" ").includes("boot noise"), "an invalid frame's content was reported");
});

Deno.test("readFrames() ends with a FrameError on a frame over the limit, with or without its newline", async () => {
  const long = `{"type":"note","text":"${"x".repeat(200)}"}`;
  await assertRejects(() => collect(streamOf(long + "\n"), 100), FrameError);
  // No newline ever: the limit applies to what is buffered, so memory stays bounded.
  await assertRejects(() => collect(streamOf(...Array(50).fill("x".repeat(10))), 100), FrameError);
  // A frame exactly at the limit passes.
  const exact = `{"type":"note","text":"${"x".repeat(100 - 25)}"}`;
  assertEquals(exact.length, 100);
  assertEquals((await collect(streamOf(exact + "\n"), 100)).messages.length, 1);
});

Deno.test("readFrames() reports a frame cut off by the end of the stream", async () => {
  const { messages, invalid } = await collect(streamOf('{"type":"note","text":"1"}\n{"type":'));
  assertEquals(messages.length, 1);
  assertEquals(invalid, ["the channel closed in the middle of a frame"]);
});

Deno.test("FramedChannel.send() writes whole frames in order over a socket that writes partially", async () => {
  const written: Uint8Array[] = [];
  let writes = 0;
  const stream = {
    readable: streamOf(),
    // Takes at most 7 bytes per call, and yields between calls, like a busy socket.
    async write(bytes: Uint8Array) {
      writes++;
      await new Promise((resolve) => setTimeout(resolve, 0));
      written.push(bytes.slice(0, 7));
      return Math.min(7, bytes.length);
    },
    close() {},
  };
  const channel = new FramedChannel<typeof Message, z.infer<typeof Message>>(stream, Message, {
    maxBytes: 1024,
  });
  await Promise.all(
    ["first", "second", "third"].map((text) => channel.send({ type: "note", text })),
  );
  const text = new TextDecoder().decode(
    new Uint8Array(written.flatMap((chunk) => [...chunk])),
  );
  assertEquals(
    text,
    '{"type":"note","text":"first"}\n{"type":"note","text":"second"}\n{"type":"note","text":"third"}\n',
  );
  assert(writes > 3);
});

Deno.test("FramedChannel.receive() reads messages over a real TCP connection until it closes", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await accepted;
  const near = new FramedChannel<typeof Message, z.infer<typeof Message>>(client, Message, {
    maxBytes: 1024,
  });
  const far = new FramedChannel<typeof Message, z.infer<typeof Message>>(server, Message, {
    maxBytes: 1024,
  });
  await near.send({ type: "note", text: "over tcp" });
  assertEquals(await far.receive(), { type: "note", text: "over tcp" });
  near.close();
  assertEquals(await far.receive(), undefined);
  await assertRejects(() => near.send({ type: "note", text: "late" }), FrameError);
  far.close();
  listener.close();
});
