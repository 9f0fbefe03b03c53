/**
 * The local host driver (`tml supervisor local`): runs each job's puppet as a child process in
 * a scratch directory instead of booting a host. It speaks the same puppet channel as VMs (TCP
 * on 127.0.0.1) with a per-job secret passed in a 0600 file. There is NO isolation: the
 * workload runs as the supervisor's user on the supervisor's machine. It exists for developing
 * workloads and tml itself.
 */
import { createLogger } from "../../lib/log.ts";
import type { JobSpec } from "../../lib/protocol/supervisor.ts";
import {
  type HostDriver,
  type HostEvents,
  HostStartError,
  type RunningHost,
} from "./host_driver.ts";
import { PuppetChannel } from "./puppet_channel.ts";

const MAIN_TS = new URL("../../main.ts", import.meta.url).pathname;

export interface LocalDriverOptions {
  stateDir: string;
  heartbeatTimeoutMs?: number;
}

export class LocalDriver implements HostDriver {
  readonly name = "local";
  readonly #log = createLogger("supervisor:local");

  constructor(private readonly options: LocalDriverOptions) {}

  async start(job: JobSpec, events: HostEvents, signal: AbortSignal): Promise<RunningHost> {
    events.subState("allocating", "creating a scratch directory");
    const scratch = `${this.options.stateDir}/jobs/${job.job_id}`;
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
    await Deno.mkdir(scratch, { recursive: true, mode: 0o700 });
    const secret = crypto.randomUUID() + crypto.randomUUID();
    await Deno.writeTextFile(`${scratch}/secret`, secret, { mode: 0o600 });

    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const channel = new PuppetChannel(
      secret,
      {
        job_id: job.job_id,
        parameters: job.parameters,
        ssh_keys: job.ssh_keys,
        workload: job.workload,
      },
      events,
      this.#log,
      this.options.heartbeatTimeoutMs ?? 15_000,
    );
    (async () => {
      for await (const connection of listener) void channel.serve(connection);
    })().catch(() => {});

    events.subState("booting", "starting the puppet");
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          MAIN_TS,
          "puppet",
          "--channel",
          `tcp:127.0.0.1:${port}`,
          "--secret-file",
          `${scratch}/secret`,
          "--root",
          `${scratch}/run-tml`,
        ],
        cwd: scratch,
        env: { TML_LOG_LEVEL: Deno.env.get("TML_LOG_LEVEL") ?? "info" },
        stdin: "null",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
    } catch (error) {
      listener.close();
      await Deno.remove(scratch, { recursive: true }).catch(() => {});
      throw new HostStartError(`Cannot start the puppet: ${(error as Error).message}`, error);
    }
    await Deno.writeTextFile(`${scratch}/puppet.pid`, String(child.pid));

    let stopping = false;
    child.status.then((status) => {
      if (!stopping) events.failed(`the puppet exited on its own with code ${status.code}`);
    });
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      await channel.shutdown();
      const exited = await Promise.race([
        child.status.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5_000)),
      ]);
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
        await child.status;
      }
      listener.close();
      await Deno.remove(scratch, { recursive: true }).catch(() => {});
    };
    signal.addEventListener("abort", () => void stop());
    return { stop };
  }

  async cleanupLeftovers(): Promise<void> {
    const jobsDir = `${this.options.stateDir}/jobs`;
    let entries: Deno.DirEntry[] = [];
    try {
      entries = [...Deno.readDirSync(jobsDir)];
    } catch {
      return;
    }
    for (const entry of entries) {
      const dir = `${jobsDir}/${entry.name}`;
      const pid = Number(await Deno.readTextFile(`${dir}/puppet.pid`).catch(() => "NaN"));
      if (Number.isInteger(pid) && pid > 1 && await isOurPuppet(pid, dir)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      this.#log.info("removed a leftover job directory", { dir });
    }
  }
}

/** Whether `pid` is still the puppet of `dir` (not an unrelated process that reused the pid). */
async function isOurPuppet(pid: number, dir: string): Promise<boolean> {
  try {
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    return cmdline.includes("puppet") && cmdline.includes(dir);
  } catch {
    return false;
  }
}
