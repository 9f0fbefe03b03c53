/**
 * A TCP proxy that drops connections on purpose: the first `cutConnections` connections are
 * closed after `cutAfterBytes` bytes of the answer, which is what a flaky network does to a
 * long download. It records the start of every request so a test can see the resuming `Range`.
 */
import { writeAll } from "./store_harness.ts";

export interface CuttingProxy {
  url: string;
  /** The head (request line and headers) of every request seen, in order. */
  requests: string[];
  close(): void;
}

export function startCuttingProxy(
  upstream: { hostname: string; port: number },
  options: { cutConnections: number; cutAfterBytes: number },
): CuttingProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: string[] = [];
  const connections = new Set<Deno.Conn>();
  let accepted = 0;
  (async () => {
    for await (const client of listener) {
      const cut = accepted++ < options.cutConnections ? options.cutAfterBytes : Infinity;
      connections.add(client);
      handle(client, cut).catch(() => {}).finally(() => connections.delete(client));
    }
  })().catch(() => {});

  async function handle(client: Deno.Conn, cutAfter: number) {
    const server = await Deno.connect(upstream);
    const closeBoth = () => {
      for (const conn of [client, server]) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    };
    const upstreamward = (async () => {
      const buffer = new Uint8Array(64 * 1024);
      let head = "";
      while (true) {
        const n = await client.read(buffer).catch(() => null);
        if (n === null) break;
        if (head.length < 4096) {
          head += new TextDecoder().decode(buffer.subarray(0, n));
          const end = head.indexOf("\r\n\r\n");
          if (end >= 0) {
            requests.push(head.slice(0, end));
            head = "\u0000".repeat(4096); // One request per connection is all fetch sends here.
          }
        }
        await writeAll(server, buffer.subarray(0, n)).catch(() => {});
      }
    })();
    const clientward = (async () => {
      const buffer = new Uint8Array(64 * 1024);
      let sent = 0;
      while (sent < cutAfter) {
        const n = await server.read(buffer).catch(() => null);
        if (n === null) break;
        const allowed = Math.min(n, cutAfter - sent);
        await writeAll(client, buffer.subarray(0, allowed)).catch(() => {});
        sent += allowed;
      }
      closeBoth();
    })();
    await Promise.all([upstreamward, clientward]);
  }

  const address = listener.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    close() {
      listener.close();
      for (const conn of connections) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    },
  };
}
