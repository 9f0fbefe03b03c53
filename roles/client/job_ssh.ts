/**
 * `tml job ssh JOB [-- COMMAND...]`: runs the system `ssh` into the job's host through the
 * rendezvous server's websocket endpoint, with `tml rendezvous connect` as its ProxyCommand, so
 * it works from networks that only let HTTP(S) out. It offers tml's own key (made at enqueue
 * and added to every job) besides the user's own keys and agent, and exits with ssh's code.
 */
import type { Command } from "commander";
import { ExitRequest } from "../../lib/cli/exit_codes.ts";
import { configDir } from "../../lib/client/credentials.ts";
import { mintPass } from "./rendezvous_dial.ts";
import { parsePort } from "./rendezvous_ports.ts";
import { authenticatedClient } from "./session.ts";

export interface SshFlags {
  login?: string;
  port?: string;
  sshOption?: string[];
}

export async function ssh(
  jobId: string,
  remoteCommand: string[],
  flags: SshFlags,
  command: Command,
): Promise<never> {
  const pass = await mintPass(await authenticatedClient(command), jobId);
  // The host's SSH port is the service the supervisor exposes as `ssh` (22 unless configured).
  const port = flags.port === undefined
    ? pass.endpoints?.find((endpoint) => endpoint.name === "ssh")?.port ?? 22
    : parsePort(flags.port, "--port");
  const args = sshArguments({
    jobId,
    port,
    login: flags.login ?? "tml",
    proxyCommand: [...tmlInvocation(), "rendezvous", "connect", jobId, String(port)],
    tmlKey: await tmlKeyPath(),
    options: flags.sshOption ?? [],
    remoteCommand,
  });
  const child = new Deno.Command("ssh", {
    args,
    // The proxy reads its pass from the environment ssh hands it, never from its argv (`ps`).
    env: { TML_RENDEZVOUS_TOKEN: pass.token, TML_RENDEZVOUS_URL: pass.rendezvousUrl },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  });
  let status: Deno.CommandStatus;
  try {
    status = await child.spawn().status;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error('Cannot run "ssh": install the OpenSSH client (Debian: openssh-client)');
    }
    throw error;
  }
  throw new ExitRequest(status.code);
}

export interface SshArgumentsInput {
  jobId: string;
  port: number;
  login: string;
  proxyCommand: string[];
  tmlKey: string | undefined;
  options: string[];
  remoteCommand: string[];
}

/**
 * The arguments of `ssh`. Every job is a fresh host with a fresh host key, and the tunnel is
 * already authenticated to that one job by the rendezvous token, so there is no known host key
 * to check: none is recorded either.
 */
export function sshArguments(input: SshArgumentsInput): string[] {
  const args = [
    "-o",
    `ProxyCommand=${input.proxyCommand.map(shellQuote).join(" ")}`,
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "LogLevel=ERROR",
  ];
  if (input.tmlKey !== undefined) args.push("-i", input.tmlKey);
  for (const option of input.options) args.push("-o", option);
  args.push("-l", input.login, `tml-job-${input.jobId}-${input.port}`);
  if (input.remoteCommand.length > 0) args.push("--", ...input.remoteCommand);
  return args;
}

/** How to run this same tml again: the binary itself, or deno with this program's entry. */
export function tmlInvocation(): string[] {
  const exec = Deno.execPath();
  if (!/(^|\/)deno(\.exe)?$/.test(exec)) return [exec];
  return [exec, "run", "-A", new URL(Deno.mainModule).pathname];
}

/** tml's own private key, when `tml job enqueue` has made it. */
async function tmlKeyPath(): Promise<string | undefined> {
  const path = `${configDir()}/ssh/id_ed25519`;
  try {
    await Deno.stat(path);
    return path;
  } catch {
    return undefined;
  }
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_\/.:=@%+-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
