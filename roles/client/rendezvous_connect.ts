/**
 * `tml rendezvous connect JOB [PORT]`: joins stdin and stdout to a port of the job's host, for
 * `ssh -o ProxyCommand=...` (what `tml job ssh` runs). The token comes from
 * `TML_RENDEZVOUS_TOKEN` and `TML_RENDEZVOUS_URL` when set (`tml job ssh` passes them, so the
 * proxy makes no request of the switchboard), else it is minted with the CLI's credentials.
 */
import type { Command } from "commander";
import { ClientError } from "../../lib/client/errors.ts";
import { splice } from "../../lib/net/splice.ts";
import { stdioStream } from "../../lib/net/stdio_stream.ts";
import { dialJob, mintPass, type RendezvousPass } from "./rendezvous_dial.ts";
import { authenticatedClient } from "./session.ts";
import { parsePort } from "./rendezvous_ports.ts";

export async function connect(jobId: string, port: string | undefined, command: Command) {
  const hostPort = parsePort(port ?? "22", "PORT");
  const token = Deno.env.get("TML_RENDEZVOUS_TOKEN");
  const url = Deno.env.get("TML_RENDEZVOUS_URL");
  let pass: RendezvousPass;
  if (token !== undefined && token !== "") {
    if (url === undefined || url === "") {
      throw new ClientError(
        "invalid_config",
        "Cannot connect: TML_RENDEZVOUS_TOKEN is set without TML_RENDEZVOUS_URL",
        400,
        "TML_RENDEZVOUS_URL",
      );
    }
    pass = { jobId, token, rendezvousUrl: url };
  } else {
    pass = await mintPass(await authenticatedClient(command), jobId);
  }
  const stream = await dialJob(pass, hostPort);
  await splice(stdioStream(), stream);
}
