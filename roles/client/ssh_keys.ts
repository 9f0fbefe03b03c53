/**
 * The SSH public keys `tml job enqueue` adds to a job: the `--ssh-key` values, else the
 * config's `ssh_keys` and `~/.ssh/*.pub`, plus a key tml generates once per user under the
 * config directory (`ssh/id_ed25519`), so that `ssh` into a job works with no setup.
 */
import { SshPublicKey } from "../../lib/protocol/common.ts";
import { enqueueInputError } from "./enqueue_request.ts";

export interface SshKeySources {
  /** `--ssh-key` values; when any are given, the config's and ~/.ssh's are not used. */
  given: string[];
  /** `ssh_keys` from the config file or `TML_SSH_KEYS`. */
  configured: string[];
  /** The user's home directory, for `~/.ssh/*.pub`. */
  home: string;
  /** Where tml keeps its own key pair (`<config dir>/ssh`). */
  tmlKeyDir: string;
  /** Says on stderr why tml's own key is missing; the job is enqueued without it. */
  warn: (message: string) => void;
  /** The key generator to run; default `ssh-keygen` from PATH. */
  sshKeygen?: string;
}

/** The keys for a job, deduplicated, each checked to be one OpenSSH public key line. */
export async function collectSshKeys(sources: SshKeySources): Promise<string[]> {
  const keys: string[] = [];
  if (sources.given.length > 0) {
    for (const key of sources.given) keys.push(checked(key, "--ssh-key"));
  } else {
    for (const key of sources.configured) keys.push(checked(key, "ssh_keys (config)"));
    keys.push(...await homePublicKeys(sources.home));
  }
  const own = await ensureTmlKey(sources.tmlKeyDir, sources.warn, sources.sshKeygen);
  if (own !== undefined) keys.push(own);
  return [...new Set(keys)];
}

function checked(key: string, flag: string): string {
  const line = key.trim();
  if (!SshPublicKey.safeParse(line).success) {
    const shown = line.length > 40 ? `${line.slice(0, 40)}…` : line;
    throw enqueueInputError(
      flag,
      `expected one OpenSSH public key line, got "${shown}"`,
      "ssh_keys",
    );
  }
  return line;
}

/** `~/.ssh/*.pub`, skipping files that are not a single public key (certificates, junk). */
async function homePublicKeys(home: string): Promise<string[]> {
  const dir = `${home}/.ssh`;
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && entry.name.endsWith(".pub")) names.push(entry.name);
    }
  } catch {
    return []; // No ~/.ssh: nothing to add.
  }
  const keys: string[] = [];
  for (const name of names.sort()) {
    const line = (await Deno.readTextFile(`${dir}/${name}`).catch(() => "")).trim();
    if (SshPublicKey.safeParse(line).success) keys.push(line);
  }
  return keys;
}

/**
 * tml's own public key, generated on first use with `ssh-keygen -t ed25519`. The pair is made
 * in a scratch directory and hard-linked into place (private key first), so two enqueues
 * racing on first use end up sharing one pair instead of one overwriting the other's.
 */
export async function ensureTmlKey(
  dir: string,
  warn: (message: string) => void,
  sshKeygen = "ssh-keygen",
): Promise<string | undefined> {
  const path = `${dir}/id_ed25519`;
  const existing = await readPublicKey(path);
  if (existing !== undefined) return existing;
  const scratch = `${dir}/.new-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.mkdir(scratch, { recursive: true, mode: 0o700 });
    let result: Deno.CommandOutput;
    try {
      result = await new Deno.Command(sshKeygen, {
        args: ["-q", "-t", "ed25519", "-N", "", "-C", "tml", "-f", `${scratch}/id_ed25519`],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        warn(
          "tml: warning: ssh-keygen not found (install openssh-client); " +
            "the job gets no key of tml's own",
        );
        return undefined;
      }
      throw error;
    }
    if (!result.success) throw new Error(new TextDecoder().decode(result.stderr).trim());
    try {
      await Deno.link(`${scratch}/id_ed25519`, path);
      await Deno.link(`${scratch}/id_ed25519.pub`, `${path}.pub`);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      return await waitForPublicKey(path); // another tml made the pair first
    }
    return await readPublicKey(path);
  } catch (error) {
    warn(
      `tml: warning: cannot create tml's SSH key "${path}": ${
        (error as Error).message
      }; the job gets no key of tml's own`,
    );
    return undefined;
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
}

async function readPublicKey(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(`${path}.pub`)).trim();
  } catch {
    return undefined;
  }
}

/** The winner of a first-use race links the public key right after the private one. */
async function waitForPublicKey(path: string): Promise<string> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const key = await readPublicKey(path);
    if (key !== undefined) return key;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`"${path}" exists without its public key "${path}.pub"`);
}
