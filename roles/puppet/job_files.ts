/**
 * Writes what a job's workload reads inside its host: `<root>/job-id`,
 * `<root>/parameters/<name>` (content exactly the value; secret ones mode 0600 and owned by the
 * `tml` user when running as root, others 0644), and the job's SSH keys. Every file is written
 * to a temporary name and renamed, so a reader never sees a half-written value.
 */
import type { PuppetJob } from "../../lib/protocol/puppet.ts";

export interface JobFileOptions {
  root: string;
  /** Where the job's SSH keys go. */
  authorizedKeys: string;
  /** uid/gid that owns secret files (the `tml` user in a real host), if any. */
  secretOwner?: { uid: number; gid: number };
}

export async function writeJobFiles(job: PuppetJob, options: JobFileOptions): Promise<void> {
  const parameterDir = `${options.root}/parameters`;
  await Deno.mkdir(parameterDir, { recursive: true, mode: 0o755 });
  await writeAtomically(`${options.root}/job-id`, job.job_id, 0o644);
  const names = new Set(Object.keys(job.parameters));
  for await (const entry of Deno.readDir(parameterDir)) {
    if (!names.has(entry.name)) await Deno.remove(`${parameterDir}/${entry.name}`);
  }
  for (const [name, parameter] of Object.entries(job.parameters)) {
    const owner = parameter.secret ? options.secretOwner : undefined;
    await writeAtomically(
      `${parameterDir}/${name}`,
      parameter.value,
      parameter.secret ? 0o600 : 0o644,
      owner,
    );
  }
  const keysDir = options.authorizedKeys.slice(0, options.authorizedKeys.lastIndexOf("/"));
  if (keysDir !== "") await Deno.mkdir(keysDir, { recursive: true, mode: 0o700 });
  const keys = job.ssh_keys.map((key) => `${key}\n`).join("");
  await writeAtomically(options.authorizedKeys, keys, 0o600, options.secretOwner);
}

async function writeAtomically(
  path: string,
  content: string,
  mode: number,
  owner?: { uid: number; gid: number },
): Promise<void> {
  const temporary = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  // Create with the final mode, so a secret is never readable by others, even briefly.
  await Deno.writeTextFile(temporary, content, { mode, createNew: true });
  await Deno.chmod(temporary, mode);
  if (owner !== undefined) await Deno.chown(temporary, owner.uid, owner.gid);
  await Deno.rename(temporary, path);
}

/** The uid/gid of a local user from /etc/passwd, if it exists. */
export async function lookupUser(
  name: string,
): Promise<{ uid: number; gid: number; home: string } | undefined> {
  try {
    for (const line of (await Deno.readTextFile("/etc/passwd")).split("\n")) {
      const fields = line.split(":");
      if (fields[0] === name && fields.length >= 7) {
        return { uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] };
      }
    }
  } catch {
    // No passwd file: no such user.
  }
  return undefined;
}
