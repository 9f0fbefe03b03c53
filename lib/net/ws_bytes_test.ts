import { assert, assertEquals, assertRejects } from "../testing/asserts.ts";
import { WebSocketBytes, WebSocketClosedError } from "./ws_bytes.ts";

const WINDOW = 64 * 1024;

/** A real websocket server on loopback; each connection's server side goes to `onStream`. */
function serve(onStream: (stream: WebSocketBytes) => void) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    onStream(new WebSocketBytes(socket, { window: WINDOW }));
    return response;
  });
  return { url: `ws://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

async function readAll(stream: WebSocketBytes): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for (let chunk; (chunk = await stream.readChunk()) !== null;) chunks.push(chunk.slice());
  const out = new Uint8Array(chunks.reduce((sum, c) => sum + c.length, 0));
  let at = 0;
  for (const chunk of chunks) out.set(chunk, (at += chunk.length) - chunk.length);
  return out;
}

Deno.test("WebSocketBytes.connect() waits for connected; bytes and eof flow both ways", async () => {
  const server = serve(async (stream) => {
    await stream.opened;
    stream.accept();
    const got = await readAll(stream);
    await stream.write(got.reverse());
    stream.closeWrite();
  });
  const client = await WebSocketBytes.connect(server.url, { window: WINDOW });
  const sent = crypto.getRandomValues(new Uint8Array(60_000));
  // More than the window, in writes of several frames: the window must be refilled by acks.
  for (let i = 0; i < 5; i++) await client.write(sent);
  client.closeWrite();
  const back = await readAll(client);
  assertEquals(back.length, sent.length * 5);
  assertEquals(back.subarray(0, sent.length), sent.slice().reverse());
  client.close();
  await server.close();
});

Deno.test("WebSocketBytes.write() waits while the reader holds a full window", async () => {
  let serverSide: WebSocketBytes | undefined;
  const server = serve(async (stream) => {
    await stream.opened;
    stream.accept();
    serverSide = stream;
  });
  const client = await WebSocketBytes.connect(server.url, { window: WINDOW });
  let written = false;
  const writing = client.write(new Uint8Array(4 * WINDOW)).then(() => (written = true));
  await new Promise((resolve) => setTimeout(resolve, 200));
  assertEquals(written, false);
  // Taking the bytes returns credit, and the rest follows.
  let taken = 0;
  while (taken < 4 * WINDOW) taken += (await serverSide!.readChunk())!.length;
  await writing;
  assert(written);
  client.close();
  await server.close();
});

Deno.test("WebSocketBytes cuts off a peer that breaks the window or sends garbage", async () => {
  const server = serve(async (stream) => {
    await stream.opened;
    stream.accept();
  });
  const cases: Array<[string | Uint8Array, string]> = [
    [new Uint8Array(WINDOW + 1), `Cannot read frame: the peer sent past its ${WINDOW}-byte window`],
    ["garbage", "Cannot read stream control: not JSON"],
    ['{"type":"ack","bytes":5}', "Cannot read stream control: ack for more bytes than were sent"],
    ['{"type":"ack","bytes":-1}', "Cannot read stream control: bytes: "],
  ];
  for (const [frame, reason] of cases) {
    const socket = new WebSocket(server.url);
    const closed = await new Promise<CloseEvent>((resolve) => {
      socket.onopen = () => socket.send(frame);
      socket.onclose = resolve;
    });
    assertEquals(closed.code, 1008);
    assert(closed.reason.startsWith(reason), `${closed.reason} starts with ${reason}`);
  }
  await server.close();
});

Deno.test("WebSocketBytes.connect() rejects with the server's close reason", async () => {
  const server = serve(async (stream) => {
    await stream.opened;
    stream.close(4403, "Cannot connect: the token is for another job");
  });
  const error = await assertRejects(
    () => WebSocketBytes.connect(server.url),
    WebSocketClosedError,
  );
  assertEquals(error.close, { code: 4403, reason: "Cannot connect: the token is for another job" });
  await server.close();
});
