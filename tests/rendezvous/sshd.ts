/**
 * A real OpenSSH server for the rendezvous tests, standing in for a job host's SSH service:
 * Debian's sshd on a loopback port with a scratch config, host key and authorized_keys, in the
 * foreground, as the user running the tests (so that user is the one who logs in). As root,
 * sshd needs its privilege-separation directory, which a machine without the ssh service lacks.
 */
import { requireProgram } from "../../lib/system_packages.ts";
import { freePort } from "../support/tml_process.ts";
import { SSH_KEYGEN, SSHD } from "../support/system_programs.ts";

export interface Sshd {
  port: number;
  /** The user sessions log in as. */
  user: string;
  /** Replaces the keys that may log in. */
  authorize(publicKeys: string[]): Promise<void>;
  stop(): Promise<void>;
}

/** Starts sshd; each session gets `TML_TEST_HOST=<name>`, so a test can tell hosts apart. */
export async function startSshd(name: string): Promise<Sshd> {
  const sshd = await requireProgram(SSHD);
  const keygen = await requireProgram(SSH_KEYGEN);
  const dir = await Deno.makeTempDir({ prefix: `tml-sshd-${name}-` });
  const keygenRun = await new Deno.Command(keygen, {
    args: ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/host_key`],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!keygenRun.success) throw new Error(new TextDecoder().decode(keygenRun.stderr));
  await Deno.writeTextFile(`${dir}/authorized_keys`, "", { mode: 0o600 });
  if (Deno.uid() === 0) await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/sshd_config`,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${dir}/host_key`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      "PidFile none",
      "UsePAM no",
      "StrictModes no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      `SetEnv TML_TEST_HOST=${name}`,
      "",
    ].join("\n"),
  );
  const child = new Deno.Command(sshd, {
    args: ["-D", "-e", "-f", `${dir}/sshd_config`],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const logged = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) log += chunk;
  })();
  const deadline = Date.now() + 10_000;
  while (!log.includes("Server listening")) {
    if (Date.now() > deadline) throw new Error(`sshd did not start:\n${log}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const user = new TextDecoder().decode(
    (await new Deno.Command("id", { args: ["-un"], stdout: "piped" }).output()).stdout,
  ).trim();
  return {
    port,
    user,
    authorize: (keys) => Deno.writeTextFile(`${dir}/authorized_keys`, keys.join("\n") + "\n"),
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
      await logged;
      await Deno.remove(dir, { recursive: true });
    },
  };
}
