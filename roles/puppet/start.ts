/**
 * What `tml puppet` and `tml puppet finish` do once their flags are parsed: find the channel,
 * the secret and where the SSH keys go, then run the puppet until its supervisor ends the job.
 */
import { createLogger } from "../../lib/log.ts";
import { locateChannel, locateSecret } from "./channel_locator.ts";
import { HostResume } from "./resume.ts";
import { defaultControlSocket, sendToPuppet } from "./control_socket.ts";
import { PuppetError } from "./errors.ts";
import { lookupUser } from "./job_files.ts";
import { Puppet } from "./puppet.ts";
import { warmUp } from "./warm_up.ts";

export interface StartPuppetFlags {
  channel?: string;
  secretFile?: string;
  root: string;
  controlSocket?: string;
  sshUser: string;
  authorizedKeys?: string;
  workdir?: string;
  reconnectTimeoutMs: number;
  stopGraceMs: number;
  echo: boolean;
}

export async function startPuppet(flags: StartPuppetFlags): Promise<void> {
  const log = createLogger("puppet");
  const channel = await locateChannel({ flag: flags.channel });
  // Found once now, so a missing secret fails at start; read again for every authentication.
  await locateSecret({ flag: flags.secretFile });
  const hostResume = HostResume.open();
  // Every path absolute: the control socket may change the working directory.
  const root = absolute(flags.root);
  // In a real host the puppet runs as root and the job's files belong to the SSH user; run as
  // anyone else (the local supervisor), everything stays under the root.
  const sshUser = Deno.uid() === 0 ? await lookupUser(flags.sshUser) : undefined;
  const puppet = new Puppet({
    channel,
    readSecret: () => locateSecret({ flag: flags.secretFile }),
    onRestored: (restored) => {
      if (hostResume === undefined) throw new Error("cannot open libc.so.6");
      hostResume.resume(restored);
    },
    warmUp: () => warmUp(log),
    root,
    authorizedKeys: absolute(
      flags.authorizedKeys ??
        (sshUser !== undefined
          ? `${sshUser.home}/.ssh/authorized_keys`
          : `${root}/authorized_keys`),
    ),
    owner: sshUser,
    workdir: absolute(flags.workdir ?? `${root}/work`),
    controlSocket: controlSocketOf(root, flags.controlSocket),
    reconnectTimeoutMs: flags.reconnectTimeoutMs,
    stopGraceMs: flags.stopGraceMs,
    echoWorkloadOutput: flags.echo,
    log,
  });
  const stop = () => puppet.stop();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  try {
    await puppet.run();
  } finally {
    Deno.removeSignalListener("SIGTERM", stop);
    Deno.removeSignalListener("SIGINT", stop);
  }
}

/** The control socket: the flag, else TML_PUPPET_CONTROL_SOCKET, else `<root>/puppet.sock`. */
export function controlSocketOf(root: string, flag?: string): string {
  return absolute(flag ?? Deno.env.get("TML_PUPPET_CONTROL_SOCKET") ?? defaultControlSocket(root));
}

function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

export async function finishCommand(
  controlSocket: string,
  options: { success?: boolean; error?: boolean; unknown?: boolean; message?: string },
): Promise<void> {
  const chosen = (["success", "error", "unknown"] as const).filter((o) => options[o] === true);
  if (chosen.length !== 1) {
    throw new PuppetError("invalid_outcome", "Give exactly one of --success, --error, --unknown", {
      field: "outcome",
    });
  }
  await sendToPuppet(controlSocket, {
    type: "workload_finished",
    outcome: chosen[0],
    message: options.message,
  });
}
