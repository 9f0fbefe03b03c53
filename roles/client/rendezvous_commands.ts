/**
 * Declares the client commands that reach a job's host through a rendezvous server:
 * `tml job ssh`, `tml job forward` and `tml rendezvous connect` (ssh's ProxyCommand).
 */
import type { Command } from "commander";
import { collect } from "./flags.ts";

const JOB_ID = "the job's id (printed by tml job enqueue as job_id)";

export function registerJobRendezvousCommands(job: Command): void {
  job.command("ssh")
    .description("ssh into a job's host through its rendezvous server; exits with ssh's code")
    .argument("<job-id>", JOB_ID)
    .argument("[command...]", "a command to run instead of a login shell (after --)")
    .option("-l, --login <user>", "user to log in as on the host (default tml)")
    .option(
      "-p, --port <port>",
      "the port on the host (default: the service the job exposes as ssh)",
    )
    .option(
      "-o, --ssh-option <option>",
      "an ssh -o option, e.g. ServerAliveInterval=30 (repeatable)",
      collect,
    )
    .addHelpText(
      "after",
      `
Runs the system ssh with a ProxyCommand (tml rendezvous connect) that tunnels over the
rendezvous server's websocket endpoint, so only HTTP(S) needs to get out of your network. It
offers tml's own key (~/.config/tml/ssh/id_ed25519, added to every job you enqueue) and your
own keys and agent. Only the job's owner and admins may reach its host. \`tml job show\` lists
the job's ssh_endpoints for plain \`ssh -p PORT HOST\` as well.

Examples:
  tml job ssh "$JOB"
  tml job ssh "$JOB" -- journalctl -b --no-pager
  tml job ssh -l root "$JOB" -- cat /run/tml/job-id`,
    )
    .action(async (jobId, remoteCommand, options, command) =>
      await (await import("./job_ssh.ts")).ssh(jobId, remoteCommand, options, command)
    );

  job.command("forward")
    .description("forward a local TCP port to a port of a job's host, until interrupted")
    .argument("<job-id>", JOB_ID)
    .argument("<ports>", "LOCAL_PORT:REMOTE_PORT, e.g. 8080:80 (the remote port must be exposed)")
    .option("--bind <host>", "local address to listen on (default 127.0.0.1)")
    .addHelpText(
      "after",
      `
Each local connection is carried over the rendezvous server's websocket endpoint to the port
on the job's host. The supervisor decides which host ports are exposed (rendezvous_services).

Examples:
  tml job forward "$JOB" 8080:80
  tml job forward "$JOB" 2222:22 &  ssh -p 2222 tml@127.0.0.1`,
    )
    .action(async (jobId, ports, options, command) =>
      await (await import("./job_forward.ts")).forward(jobId, ports, options, command)
    );
}

export function registerRendezvousClientCommands(rendezvous: Command): void {
  rendezvous.command("connect")
    .description("join stdin and stdout to a port of a job's host (an ssh ProxyCommand)")
    .argument("<job-id>", JOB_ID)
    .argument("[port]", "the port on the job's host (default 22)")
    .addHelpText(
      "after",
      `
Uses TML_RENDEZVOUS_TOKEN and TML_RENDEZVOUS_URL when set (tml job ssh sets them), else mints
a token with your credentials (TML_API_TOKEN or tml login).

Examples:
  ssh -o ProxyCommand="tml rendezvous connect $JOB 22" tml@job
  tml rendezvous connect "$JOB" 22 < request.bin`,
    )
    .action(async (jobId, port, _options, command) =>
      await (await import("./rendezvous_connect.ts")).connect(jobId, port, command)
    );
}
