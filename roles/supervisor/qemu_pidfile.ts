/**
 * Finds the QEMU a job or template directory's pid file names, for ending the VMs a killed
 * supervisor left behind. QEMU writes `<dir>/qemu.pid` itself (`-pidfile`).
 */

/** The pid in `<dir>/qemu.pid` when that process is still a QEMU started for `dir`. */
export async function runningQemuOf(dir: string): Promise<number | undefined> {
  const pid = Number((await Deno.readTextFile(`${dir}/qemu.pid`).catch(() => "")).trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    // A reused pid belongs to some other program: the job directory is on QEMU's command line.
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const zombie = stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
    return cmdline.includes("qemu") && cmdline.includes(`${dir}/`) && !zombie ? pid : undefined;
  } catch {
    return undefined;
  }
}
