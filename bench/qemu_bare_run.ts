/**
 * QEMU started by hand, as the reference the QEMU supervisor's overheads are measured against:
 * `captureQemuCommand` reads the command line of the QEMU a supervised job runs (from
 * /proc/<pid>/cmdline, the pid from the job directory's qemu.pid), and `runBareQemu` replays it
 * in a directory of its own with a fresh overlay and secret, the supervisor's puppet channel as
 * the only peer (the guest's puppet needs one to authenticate, get its job and report ready).
 * A warm-started job's command awaits its snapshot (`-incoming defer`): the run by hand then
 * loads and resumes it over QMP, as the supervisor does. Nothing else of the supervisor runs:
 * no switchboard, no fetch, no console follower.
 */
import { createLogger } from "../lib/log.ts";
import { generatePuppetSecret, PuppetChannel } from "../roles/supervisor/puppet_channel.ts";
import { createOverlay, readBackingFile } from "../roles/supervisor/qemu_disk.ts";
import { resumedSnapshotDir, resumeSnapshot } from "../roles/supervisor/qemu_snapshot.ts";
import { withStartingQemu } from "../roles/supervisor/qemu_qmp.ts";

/** A supervised job's QEMU command line, and the job directory its paths point into. */
export interface QemuCommand {
  binary: string;
  args: string[];
  jobDir: string;
  /** The file the job's disk overlay is backed by: the image's top layer, or its snapshot's. */
  diskBacking: string;
  /** The warm-start snapshot the command resumes (over QMP, once QEMU runs), if it does. */
  snapshotDir?: string;
}

/** Times of one bare run, in ms from QEMU's spawn. */
export interface BareTiming {
  /** The puppet reported ready (authenticated, got its job, wrote its files). */
  readyMs: number;
  /** The puppet reported the workload's result; the guest is then told to shut down. */
  workloadFinishedMs: number;
  /** QEMU exited (the guest powered off). */
  exitedMs: number;
  /** CPU time QEMU used, user and system, in ms. */
  qemuCpuMs: number;
  /** The guest's own `tml-guest: <what> (uptime <s> s)` console lines: what -> uptime in ms. */
  guestMarks: Map<string, number>;
}

/**
 * Waits for the QEMU of the job whose directory is `jobDir` and returns its command line.
 * The job must still be running when its QEMU starts; fails after `timeoutMs`.
 */
export async function captureQemuCommand(
  jobDir: string,
  qemuImg: string,
  timeoutMs = 60_000,
): Promise<QemuCommand> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const pid = (await Deno.readTextFile(`${jobDir}/qemu.pid`).catch(() => "")).trim();
    if (pid !== "") {
      const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
      const [binary, ...args] = cmdline.replace(/\0$/, "").split("\0");
      if (!args.some((arg) => arg.includes(jobDir))) {
        throw new Error(`process ${pid} of ${jobDir}/qemu.pid is not that job's QEMU`);
      }
      return {
        binary,
        args,
        jobDir,
        diskBacking: await readBackingFile(qemuImg, `${jobDir}/disk.qcow2`),
        snapshotDir: resumedSnapshotDir(args),
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no QEMU started for ${jobDir} within ${timeoutMs} ms`);
}

/**
 * Runs the captured command again in `runDir` (created; removed afterwards): a new qcow2
 * overlay on the same backing file where the job had its own, a new secret, the same arguments
 * otherwise.
 * The puppet gets a job running `workload`; when it reports the result it is told to shut down,
 * as the supervisor does, and the guest powers off.
 */
export async function runBareQemu(options: {
  command: QemuCommand;
  runDir: string;
  qemuImg: string;
  workload: string;
  timeoutMs?: number;
}): Promise<BareTiming> {
  const { command, runDir } = options;
  await Deno.mkdir(runDir, { recursive: true, mode: 0o700 });
  try {
    await createOverlay(options.qemuImg, command.diskBacking, `${runDir}/disk.qcow2`);
    const secret = generatePuppetSecret();
    await Deno.writeTextFile(`${runDir}/secret`, secret, { mode: 0o600 });
    const args = command.args.map((arg) => arg.replaceAll(command.jobDir, runDir));

    let readyMs: number | undefined;
    let workloadFinishedMs: number | undefined;
    let finished = false;
    let started = 0;
    const since = () => performance.now() - started;
    const channel: PuppetChannel = new PuppetChannel({
      secret,
      job: {
        job_id: crypto.randomUUID(),
        parameters: {},
        ssh_keys: [],
        workload: options.workload,
      },
      events: {
        progress: () => {},
        ready: () => (readyMs ??= since()),
        output: () => {},
        workloadFinished: () => {
          workloadFinishedMs ??= since();
          finished = true;
          void channel.shutdown("the workload finished");
        },
        terminateRequested: () => {},
        hostLost: () => {},
      },
      log: createLogger("bench:bare-qemu", "warn"),
      authTimeoutMs: options.timeoutMs ?? 120_000,
      restored: command.snapshotDir !== undefined,
    });

    const childCpuBefore = await childrenCpuMs();
    started = performance.now();
    const qemu = new Deno.Command(command.binary, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(qemu.stderr).text();
    let exited = false;
    const status = qemu.status.then((status) => {
      exited = true;
      return status;
    });
    const timer = setTimeout(() => qemu.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    const snapshotDir = command.snapshotDir;
    if (snapshotDir !== undefined) {
      await withStartingQemu(
        `${runDir}/qmp.sock`,
        status,
        (qmp) => resumeSnapshot(qmp, snapshotDir),
      );
    }
    // Like the supervisor: connect as soon as QEMU has made the socket; one connection lasts,
    // and none is made once the guest is shutting down.
    const serving = (async () => {
      while (!exited && !finished) {
        let connection: Deno.UnixConn;
        try {
          connection = await Deno.connect({ transport: "unix", path: `${runDir}/puppet.sock` });
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 20));
          continue;
        }
        await channel.serve(connection);
      }
    })();
    const exitStatus = await status;
    const exitedMs = since();
    // QEMU is reaped by now, so its CPU time is in this process's children's.
    const qemuCpuMs = await childrenCpuMs() - childCpuBefore;
    clearTimeout(timer);
    channel.close();
    await serving;
    if (readyMs === undefined || workloadFinishedMs === undefined) {
      throw new Error(
        `bare QEMU exited with code ${exitStatus.code} before its puppet ` +
          `${readyMs === undefined ? "was ready" : "finished the workload"}: ${await stderr}`,
      );
    }
    const guestMarks = new Map<string, number>();
    const consoleText = await Deno.readTextFile(`${runDir}/console.log`);
    for (const [, what, uptime] of consoleText.matchAll(/tml-guest: (.*) \(uptime ([\d.]+) s\)/g)) {
      guestMarks.set(what, Number(uptime) * 1000);
    }
    return { readyMs, workloadFinishedMs, exitedMs, qemuCpuMs, guestMarks };
  } finally {
    await Deno.remove(runDir, { recursive: true }).catch(() => {});
  }
}

/** CPU time, user and system, of this process's reaped children (/proc/self/stat), in ms. */
async function childrenCpuMs(): Promise<number> {
  return (await processCpu("self")).childrenMs;
}

/**
 * CPU time of a process from /proc/<pid>/stat, in ms: its own (utime + stime) and that of its
 * children it has waited for (cutime + cstime). Linux counts in clock ticks of 10 ms.
 */
export async function processCpu(
  pid: number | "self",
): Promise<{ ownMs: number; childrenMs: number }> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  const [utime, stime, cutime, cstime] = fields.slice(11, 15);
  return { ownMs: (utime + stime) * 10, childrenMs: (cutime + cstime) * 10 };
}
