/**
 * The running puppet's local control socket, `<root>/puppet.sock` (mode 0600) unless given
 * elsewhere: `tml puppet finish` and `tml puppet terminate`, run by a workload that reports by
 * itself (a GitHub Actions runner the image starts), send one request frame here and get one
 * reply frame back.
 *
 * A unix socket address holds at most 107 bytes, and a root deep in a supervisor's state
 * directory is longer. Both ends then change into the socket's directory and use its bare
 * name: the puppet works with absolute paths only, and `tml puppet finish` is short-lived.
 */
import { FramedChannel } from "../../lib/protocol/framed_json.ts";
import { PuppetControlReply, PuppetControlRequest } from "../../lib/protocol/puppet.ts";
import { PuppetError } from "./errors.ts";

const MAX_CONTROL_FRAME_BYTES = 64 * 1024;

export function defaultControlSocket(root: string): string {
  return `${root}/puppet.sock`;
}

/** The address to bind or connect to for `path`, changing directory when it is too long. */
function socketAddress(path: string): string {
  if (new TextEncoder().encode(path).length <= 100) return path;
  const slash = path.lastIndexOf("/");
  Deno.chdir(path.slice(0, slash) || "/");
  return path.slice(slash + 1);
}

export interface ControlSocket {
  close(): void;
}

/** Serves the control socket at `path` (absolute); `handle` decides each request's reply. */
export function serveControlSocket(
  path: string,
  handle: (request: PuppetControlRequest) => Promise<PuppetControlReply>,
): ControlSocket {
  try {
    Deno.removeSync(path); // Left by a puppet that did not end cleanly.
  } catch {
    // No stale socket.
  }
  const listener = Deno.listen({ transport: "unix", path: socketAddress(path) });
  Deno.chmodSync(path, 0o600);
  (async () => {
    for await (const connection of listener) {
      const channel = new FramedChannel<typeof PuppetControlRequest, PuppetControlReply>(
        connection,
        PuppetControlRequest,
        { maxBytes: MAX_CONTROL_FRAME_BYTES },
      );
      (async () => {
        try {
          const request = await channel.receive();
          if (request !== undefined) await channel.send(await handle(request));
        } catch {
          // A broken client concerns only that client.
        } finally {
          channel.close();
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

/** Sends one request to the puppet whose control socket is `path` and returns its reply. */
export async function sendToPuppet(
  path: string,
  request: PuppetControlRequest,
): Promise<PuppetControlReply> {
  let connection: Deno.UnixConn;
  try {
    connection = await Deno.connect({ transport: "unix", path: socketAddress(path) });
  } catch (error) {
    throw new PuppetError(
      "puppet_not_running",
      `Cannot reach the puppet at "${path}": ${(error as Error).message}`,
      { cause: error },
    );
  }
  const channel = new FramedChannel<typeof PuppetControlReply, PuppetControlRequest>(
    connection,
    PuppetControlReply,
    { maxBytes: MAX_CONTROL_FRAME_BYTES },
  );
  try {
    await channel.send(request);
    const reply = await channel.receive();
    if (reply === undefined) {
      throw new PuppetError(
        "puppet_no_reply",
        "Cannot tell the puppet: it closed without replying",
      );
    }
    if (!reply.ok) {
      throw new PuppetError("puppet_refused", reply.message ?? "The puppet refused the request");
    }
    return reply;
  } finally {
    channel.close();
  }
}
