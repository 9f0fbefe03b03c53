/**
 * Writes what a job's workload reads inside its host:
 *
 *   <root>/job-id               the job's UUID
 *   <root>/parameters/<name>    content exactly the value; secret ones mode 0600 (owned by the
 *                               `tml` user when the puppet runs as root), others 0644
 *   <authorized_keys>           the job's SSH keys, in a block tml owns
 *
 * Every file is written under a temporary name that no parameter can have (parameter names
 * never start with a dot), with its final mode, then renamed: a reader never sees a
 * half-written value and a secret is never readable by others, not even briefly. Writing the
 * same job again (after a puppet restart) gives the same files.
 */
import type { PuppetJob } from "../../lib/protocol/puppet.ts";

export interface Owner {
  uid: number;
  gid: number;
}

export interface JobFileOptions {
  root: string;
  /** Where the job's SSH keys go. */
  authorizedKeys: string;
  /** Who owns secret files and the keys (the `tml` user in a real host), if not the puppet. */
  owner?: Owner;
}

const KEYS_BEGIN = "# BEGIN tml job keys (managed by tml puppet)";
const KEYS_END = "# END tml job keys";

export async function writeJobFiles(job: PuppetJob, options: JobFileOptions): Promise<void> {
  const parameterDir = `${options.root}/parameters`;
  await Deno.mkdir(parameterDir, { recursive: true });
  await Deno.chmod(parameterDir, 0o755);
  await writeAtomically(`${options.root}/job-id`, job.job_id, 0o644);
  const names = new Set(Object.keys(job.parameters));
  for await (const entry of Deno.readDir(parameterDir)) {
    if (!names.has(entry.name)) await Deno.remove(`${parameterDir}/${entry.name}`);
  }
  for (const [name, parameter] of Object.entries(job.parameters)) {
    await writeAtomically(
      `${parameterDir}/${name}`,
      parameter.value,
      parameter.secret ? 0o600 : 0o644,
      parameter.secret ? options.owner : undefined,
    );
  }
  await writeAuthorizedKeys(options.authorizedKeys, job.ssh_keys, options.owner);
}

/** Replaces tml's block of keys in an authorized_keys file, keeping every other line. */
async function writeAuthorizedKeys(path: string, keys: string[], owner?: Owner): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  if (dir !== "") {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    if (owner !== undefined) await Deno.chown(dir, owner.uid, owner.gid);
  }
  const existing = await Deno.readTextFile(path).catch(() => "");
  const kept: string[] = [];
  let inBlock = false;
  for (const line of existing.split("\n")) {
    if (line === KEYS_BEGIN) inBlock = true;
    else if (line === KEYS_END) inBlock = false;
    else if (!inBlock && line !== "") kept.push(line);
  }
  const lines = [...kept, KEYS_BEGIN, ...keys, KEYS_END];
  await writeAtomically(path, lines.join("\n") + "\n", 0o600, owner);
}

async function writeAtomically(
  path: string,
  content: string,
  mode: number,
  owner?: Owner,
): Promise<void> {
  const slash = path.lastIndexOf("/");
  const temporary = `${path.slice(0, slash)}/.${path.slice(slash + 1)}.tmp-${
    crypto.randomUUID().slice(0, 8)
  }`;
  try {
    await Deno.writeTextFile(temporary, content, { mode, createNew: true });
    // The creation mode went through the umask; set it exactly.
    await Deno.chmod(temporary, mode);
    if (owner !== undefined) await Deno.chown(temporary, owner.uid, owner.gid);
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

/** The uid, gid and home of a local user from /etc/passwd, if it exists. */
export async function lookupUser(
  name: string,
  passwdFile = "/etc/passwd",
): Promise<(Owner & { home: string }) | undefined> {
  const text = await Deno.readTextFile(passwdFile).catch(() => "");
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields[0] === name && fields.length >= 7) {
      return { uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] };
    }
  }
  return undefined;
}
