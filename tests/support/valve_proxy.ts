/**
 * A TCP proxy with a valve on the answers: while it is closed, bytes from the upstream server
 * wait in the proxy, so a download hangs part way as on a congested link, and flow again when
 * it opens. Tests use it to catch a job while it is fetching its image.
 */
import { writeAll } from "../image_store/store_harness.ts";

export interface ValveProxy {
  url: string;
  /** Holds answers after the bytes already passed. */
  close(): void;
  /** Lets held and later answers through. */
  open(): void;
  stop(): void;
}

export function startValveProxy(upstream: { hostname: string; port: number }): ValveProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections = new Set<Deno.Conn>();
  let opened: Promise<void> = Promise.resolve();
  let release: (() => void) | undefined;

  const pump = async (from: Deno.Conn, to: Deno.Conn, valve: boolean) => {
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      const n = await from.read(buffer);
      if (n === null) break;
      if (valve) await opened;
      await writeAll(to, buffer.subarray(0, n));
    }
  };
  (async () => {
    for await (const client of listener) {
      const server = await Deno.connect(upstream).catch(() => undefined);
      if (server === undefined) {
        client.close();
        continue;
      }
      connections.add(client).add(server);
      Promise.race([pump(client, server, false), pump(server, client, true)]).catch(() => {})
        .finally(() => {
          for (const conn of [client, server]) {
            connections.delete(conn);
            try {
              conn.close();
            } catch {
              // Already closed.
            }
          }
        });
    }
  })().catch(() => {});
  const { hostname, port } = listener.addr as Deno.NetAddr;
  return {
    url: `http://${hostname}:${port}`,
    close() {
      if (release !== undefined) return;
      opened = new Promise((resolve) => (release = resolve));
    },
    open() {
      release?.();
      release = undefined;
    },
    stop() {
      this.open();
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
