/**
 * Runs the job's workload with `/bin/sh -c` in its own process group, under a small wrapper
 * shell that appends its output to files and records its exit code (see `puppet_state.ts`).
 * A workload started by an earlier run of the puppet is adopted: the puppet watches its pid
 * and reads the exit code the wrapper left, so a puppet restart neither runs the workload twice
 * nor loses its result.
 */
import type { PuppetState, WorkloadResult } from "./puppet_state.ts";

// $1 stdout file, $2 stderr file, $3 exit-code file, $4 the workload command.
const WRAPPER = `exec </dev/null >>"$1" 2>>"$2"
/bin/sh -c "$4"
code=$?
printf '%s\\n' "$code" >"$3.tmp" && mv "$3.tmp" "$3"
exit "$code"`;

const POLL_MS = 250;
/** How long stop() waits for SIGKILLed members of the group to exit. */
const KILL_SETTLE_MS = 5_000;

export interface WorkloadOptions {
  state: PuppetState;
  jobId: string;
  workdir: string;
  /** Variables the workload gets on top of the puppet's environment. */
  env: Record<string, string>;
}

export class Workload {
  private constructor(
    /** Pid of the wrapper shell, which leads the workload's process group. */
    readonly pid: number,
    /** Resolves with the result once the workload has ended. */
    readonly finished: Promise<WorkloadResult>,
    private readonly jobId: string,
  ) {}

  static async start(command: string, options: WorkloadOptions): Promise<Workload> {
    const { state } = options;
    await Deno.mkdir(options.workdir, { recursive: true });
    const child = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        WRAPPER,
        "tml-workload",
        state.outputPath("stdout"),
        state.outputPath("stderr"),
        state.exitCodePath,
        command,
      ],
      cwd: options.workdir,
      env: { ...options.env, TML_JOB_ID: options.jobId },
      stdin: "null",
      stdout: "null",
      stderr: "null",
      // A new session and process group, so stopping the workload reaches its children too.
      detached: true,
    }).spawn();
    await state.writeWorkloadPid(child.pid);
    const finished = child.status.then(async (status) =>
      resultOf(await state.readExitCode(), status.signal)
    );
    return new Workload(child.pid, finished, options.jobId);
  }

  /** The workload an earlier run of the puppet started for this job, if there was one. */
  static async adopt(state: PuppetState, jobId: string): Promise<Workload | undefined> {
    const pid = await state.readWorkloadPid();
    if (pid === undefined) return undefined;
    const finished = (async () => {
      while (await isWorkloadOf(pid, jobId)) await delay(POLL_MS);
      return resultOf(await state.readExitCode(), null);
    })();
    return new Workload(pid, finished, jobId);
  }

  /**
   * Ends the workload's process group: SIGTERM, then SIGKILL after `graceMs`. Resolves once
   * every process of the group has exited, not merely been signalled.
   */
  async stop(graceMs: number): Promise<void> {
    this.#signalGroup("SIGTERM");
    const ended = await Promise.race([this.finished.then(() => true), delay(graceMs, false)]);
    // Children the workload left in its group go too, even when the wrapper itself has ended.
    this.#signalGroup("SIGKILL");
    if (!ended) await this.finished;
    // SIGKILL is delivered asynchronously: a child can still be running for a moment after the
    // wrapper has been reaped.
    const deadline = performance.now() + KILL_SETTLE_MS;
    while (await groupHasLiveMembers(this.pid) && performance.now() < deadline) await delay(10);
  }

  #signalGroup(signal: Deno.Signal): void {
    try {
      Deno.kill(-this.pid, signal);
    } catch {
      // The group is empty: everything has ended.
    }
  }
}

function resultOf(exitCode: number | undefined, signal: Deno.Signal | null): WorkloadResult {
  if (exitCode === 0) return { outcome: "success", exit_code: 0, message: "exit code 0" };
  if (exitCode !== undefined) {
    return { outcome: "error", exit_code: exitCode, message: `exit code ${exitCode}` };
  }
  if (signal !== null) return { outcome: "error", message: `the workload was killed by ${signal}` };
  return {
    outcome: "unknown",
    message: "the workload ended while the puppet was away and left no exit code",
  };
}

/** Whether `pid` is alive and is the workload of `jobId` (not a process that reused the pid). */
async function isWorkloadOf(pid: number, jobId: string): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return false;
    const environ = await Deno.readTextFile(`/proc/${pid}/environ`);
    return environ.split("\0").includes(`TML_JOB_ID=${jobId}`);
  } catch {
    return false;
  }
}

/** Whether any process of group `pgid` is still running (zombies have ended; they only wait to be reaped). */
async function groupHasLiveMembers(pgid: number): Promise<boolean> {
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      // Fields after the command name: state, ppid, pgrp, ...
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(pgrp) === pgid && state !== "Z" && state !== "X") return true;
    } catch {
      // The process ended while we looked.
    }
  }
  return false;
}

function delay<T = void>(ms: number, value?: T): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(value as T), ms));
}
