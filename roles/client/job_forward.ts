/**
 * `tml job forward JOB LOCAL_PORT:REMOTE_PORT`: listens on a local port and carries each
 * connection to a port of the job's host through the rendezvous server's websocket endpoint,
 * until interrupted or the job ends. The user token is reused while it has a minute left, and
 * minted again after that.
 */
import type { Command } from "commander";
import { note } from "../../lib/cli/output.ts";
import { ClientError } from "../../lib/client/errors.ts";
import { splice } from "../../lib/net/splice.ts";
import { dialJob, mintPass, type RendezvousPass } from "./rendezvous_dial.ts";
import { parseForward } from "./rendezvous_ports.ts";
import { authenticatedClient } from "./session.ts";

const RENEW_BEFORE_MS = 60_000;

export async function forward(
  jobId: string,
  ports: string,
  flags: { bind?: string },
  command: Command,
): Promise<void> {
  const { local, remote } = parseForward(ports);
  const client = await authenticatedClient(command);
  // Minted before listening: a job the caller cannot reach fails here, not per connection.
  let pass: Promise<RendezvousPass> = mintPass(client, jobId);
  await pass;
  const currentPass = async () => {
    const held = await pass.catch(() => undefined);
    if (held === undefined || (held.expiresAt ?? 0) - Date.now() < RENEW_BEFORE_MS) {
      pass = mintPass(client, jobId);
    }
    return await pass;
  };
  const hostname = flags.bind ?? "127.0.0.1";
  const listener = Deno.listen({ hostname, port: local });
  note(
    `Forwarding ${hostname}:${listener.addr.port} to port ${remote} of job ${jobId} (Ctrl-C ends)`,
  );
  let fatal: ClientError | undefined;
  const connections = listener[Symbol.asyncIterator]();
  while (true) {
    const next = await connections.next().catch(() => ({ done: true as const, value: undefined }));
    if (next.done) break;
    const conn = next.value;
    void (async () => {
      try {
        conn.setNoDelay(true);
        await splice(conn, await dialJob(await currentPass(), remote));
      } catch (error) {
        conn.close();
        note(`tml: ${(error as Error).message}`);
        // A job that has ended stays ended: stop listening.
        if (error instanceof ClientError && error.code === "job_terminated") {
          fatal = error;
          listener.close();
        }
      }
    })();
  }
  if (fatal !== undefined) throw fatal;
}
