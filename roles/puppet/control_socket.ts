/**
 * The puppet's local control socket (`<root>/puppet.sock`): `tml puppet finish` and
 * `tml puppet terminate`, run by a workload that reports by itself, send one JSON frame here
 * and the puppet relays it to its supervisor.
 */
import { encodeFrame, readFrames } from "../../lib/protocol/framed_json.ts";
import { PuppetMessage } from "../../lib/protocol/puppet.ts";

export function serveControlSocket(
  path: string,
  relay: (message: PuppetMessage) => Promise<void>,
): { close(): void } {
  try {
    Deno.removeSync(path);
  } catch {
    // No stale socket.
  }
  const listener = Deno.listen({ transport: "unix", path });
  Deno.chmodSync(path, 0o600);
  (async () => {
    for await (const connection of listener) {
      (async () => {
        try {
          for await (
            const message of readFrames(connection.readable, PuppetMessage, { maxBytes: 65_536 })
          ) {
            if (message.type === "workload_finished" || message.type === "terminate_request") {
              await relay(message);
              await connection.write(encodeFrame({ ok: true }));
            }
          }
        } catch {
          // A broken client connection concerns only that client.
        } finally {
          try {
            connection.close();
          } catch {
            // Already closed.
          }
        }
      })();
    }
  })().catch(() => {});
  return {
    close() {
      listener.close();
      try {
        Deno.removeSync(path);
      } catch {
        // Already gone.
      }
    },
  };
}

/** Sends one message to a running puppet's control socket and waits for its answer. */
export async function sendToPuppet(root: string, message: PuppetMessage): Promise<void> {
  // Resolve the root first: a unix socket path may hold at most 107 bytes.
  const path = `${await Deno.realPath(root)}/puppet.sock`;
  const connection = await Deno.connect({ transport: "unix", path });
  try {
    await connection.write(encodeFrame(message));
    const reader = connection.readable.getReader();
    await reader.read();
    reader.releaseLock();
  } finally {
    connection.close();
  }
}
