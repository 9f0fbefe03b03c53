import { assertEquals } from "../testing/asserts.ts";
import { splice } from "./splice.ts";

/** A connected pair of real TCP connections on loopback. */
async function tcpPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  listener.close();
  return [client, server];
}

async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  for (let n; (n = await conn.read(buffer)) !== null;) chunks.push(buffer.slice(0, n));
  const out = new Uint8Array(chunks.reduce((sum, c) => sum + c.length, 0));
  let at = 0;
  for (const chunk of chunks) out.set(chunk, (at += chunk.length) - chunk.length);
  return out;
}

Deno.test("splice() copies both ways and carries a half-close through", async () => {
  const [user, userSide] = await tcpPair();
  const [hostSide, host] = await tcpPair();
  const spliced = splice(userSide, hostSide);
  // 5 MiB upstream: enough for the relay's buffer to grow several times.
  const upload = crypto.getRandomValues(new Uint8Array(64 * 1024)).slice();
  const big = new Uint8Array(5 * 1024 * 1024);
  for (let at = 0; at < big.length; at += upload.length) big.set(upload, at);
  const received = readAll(host);
  for (let at = 0; at < big.length;) at += await user.write(big.subarray(at));
  await user.closeWrite();
  assertEquals((await received).length, big.length);
  assertEquals(await received, big);
  // The host still answers after the user's half-close, then ends its side.
  await host.write(new TextEncoder().encode("bye"));
  await host.closeWrite();
  assertEquals(new TextDecoder().decode(await readAll(user)), "bye");
  await spliced;
  user.close();
  host.close();
});

Deno.test("splice() ends both sides when writing to one fails", async () => {
  const [user, userSide] = await tcpPair();
  const [hostSide, host] = await tcpPair();
  const spliced = splice(userSide, hostSide);
  host.close();
  // The host's end arrives as a half-close: the user may still talk...
  assertEquals(await readAll(user), new Uint8Array());
  // ...but what it sends meets a reset, which ends the splice and both connections.
  let ended = false;
  spliced.then(() => (ended = true));
  for (let attempt = 0; attempt < 50 && !ended; attempt++) {
    await user.write(new Uint8Array(1024)).catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await spliced;
  user.close();
});
