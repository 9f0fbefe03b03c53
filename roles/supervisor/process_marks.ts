/**
 * Finds the processes of a local host by a mark in their environment. The local driver starts
 * each puppet with `TML_LOCAL_HOST=<job directory>`; the workload and everything it starts
 * inherit it, even when they leave the puppet's process group. So after a kill -9 of the
 * supervisor, or a workload that forked into the background, every process of the job can
 * still be found and ended. (A process that clears its environment escapes; it is a
 * development tool without isolation.)
 */

export const HOST_MARK_VARIABLE = "TML_LOCAL_HOST";

export interface MarkedProcess {
  pid: number;
  /** The mark's value: the job directory the process belongs to. */
  mark: string;
}

/** Live processes (not zombies) of this user whose mark satisfies `belongs`. */
export async function findMarkedProcesses(
  belongs: (mark: string) => boolean,
): Promise<MarkedProcess[]> {
  const found: MarkedProcess[] = [];
  const prefix = `${HOST_MARK_VARIABLE}=`;
  for await (const entry of Deno.readDir("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) continue;
    try {
      const environ = await Deno.readTextFile(`/proc/${pid}/environ`);
      const variable = environ.split("\0").find((item) => item.startsWith(prefix));
      if (variable === undefined || !belongs(variable.slice(prefix.length))) continue;
      if (await isZombie(pid)) continue;
      found.push({ pid, mark: variable.slice(prefix.length) });
    } catch {
      // Gone, or another user's process.
    }
  }
  return found;
}

/**
 * SIGKILLs every marked process whose mark satisfies `belongs`, again and again until none is
 * left: a process may start one more (a puppet spawning the workload) between finding and
 * killing. Returns how many it killed.
 */
export async function killMarkedProcesses(belongs: (mark: string) => boolean): Promise<number> {
  let killed = 0;
  for (let round = 0; round < 20; round++) {
    const found = await findMarkedProcesses(belongs);
    if (found.length === 0) break;
    await killProcesses(found.map((process) => process.pid));
    killed += found.length;
  }
  return killed;
}

/** SIGKILLs the processes and waits (up to `timeoutMs`) until they are gone. */
export async function killProcesses(pids: number[], timeoutMs = 5_000): Promise<void> {
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  const deadline = Date.now() + timeoutMs;
  for (const pid of pids) {
    while (await isAlive(pid) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

async function isZombie(pid: number): Promise<boolean> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
}

async function isAlive(pid: number): Promise<boolean> {
  try {
    return !await isZombie(pid);
  } catch {
    return false;
  }
}
