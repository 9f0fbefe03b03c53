/**
 * The local host driver (`tml supervisor local`): instead of booting a host, it runs the job's
 * real `tml puppet` as a child process in a scratch directory, over the same puppet channel as
 * VMs (TCP on 127.0.0.1), with the per-job secret in a file only this user can read.
 *
 * There is NO isolation: the workload runs as the supervisor's user on the supervisor's
 * machine and can read and change anything that user can. It exists to develop workloads and
 * tml itself.
 *
 *   <state_dir>/jobs/<job id>/     mode 0700, removed when the job ends
 *     secret                       the per-job secret, mode 0600
 *     puppet.log                   the puppet's own log (for a start failure's message)
 *     run-tml/                     the puppet's root: job-id, parameters/, work/
 *
 * Every process of a job carries the job directory in its environment
 * (`process_marks.ts`), so stopping a job, or cleaning up after a kill -9 of the supervisor,
 * ends all of them, the workload's background children included.
 */
import { createLogger, type Logger } from "../../lib/log.ts";
import type { JobSpec } from "../../lib/protocol/supervisor.ts";
import {
  type HostAddress,
  type HostDriver,
  type HostEvents,
  HostStartError,
  type Leftover,
  type RunningHost,
} from "./host_driver.ts";
import { findMarkedProcesses, HOST_MARK_VARIABLE, killMarkedProcesses } from "./process_marks.ts";
import { generatePuppetSecret, PuppetChannel } from "./puppet_channel.ts";

const MAIN_TS = new URL("../../main.ts", import.meta.url).pathname;

export interface LocalDriverOptions {
  stateDir: string;
  /** How long the puppet has to report ready (default 60 s). */
  readyTimeoutMs?: number;
  /** The puppet's heartbeat interval (default 2 s); three missed mean a hung host. */
  heartbeatIntervalMs?: number;
  /** How long the workload gets between SIGTERM and SIGKILL when the job stops (default 5 s). */
  stopGraceMs?: number;
}

export class LocalDriver implements HostDriver {
  readonly name = "local";
  readonly #log: Logger;
  /** Job directories of the hosts this driver runs now; anything else under jobs/ is left over. */
  readonly #active = new Set<string>();

  constructor(private readonly options: LocalDriverOptions, log?: Logger) {
    this.#log = log ?? createLogger("supervisor:local");
  }

  get #jobsDir(): string {
    return `${this.options.stateDir}/jobs`;
  }

  async start(job: JobSpec, events: HostEvents, signal: AbortSignal): Promise<RunningHost> {
    const dir = `${this.#jobsDir}/${job.job_id}`;
    this.#active.add(dir);
    const host = new LocalHost(job, dir, events, this.options, this.#log);
    try {
      await host.launch(signal);
    } catch (error) {
      await host.stop("start failed");
      this.#active.delete(dir);
      throw error instanceof HostStartError
        ? error
        : new HostStartError(`Cannot start a local host: ${(error as Error).message}`, error);
    }
    return {
      stop: async (reason) => {
        await host.stop(reason);
        this.#active.delete(dir);
      },
    };
  }

  /** The local host is this machine: its ports are the job's, while the job runs. */
  hostAddress(jobId: string, port: number): HostAddress | undefined {
    return this.#active.has(`${this.#jobsDir}/${jobId}`)
      ? { hostname: "127.0.0.1", port }
      : undefined;
  }

  async listLeftovers(): Promise<Leftover[]> {
    const leftovers: Leftover[] = [];
    const jobsDir = this.#jobsDir;
    const stale = (dir: string) => dir.startsWith(`${jobsDir}/`) && !this.#active.has(dir);
    for (const process of await findMarkedProcesses(stale)) {
      leftovers.push({
        job_id: process.mark.slice(jobsDir.length + 1),
        description: `process ${process.pid}`,
      });
    }
    try {
      for await (const entry of Deno.readDir(jobsDir)) {
        if (!stale(`${jobsDir}/${entry.name}`)) continue;
        leftovers.push({ job_id: entry.name, description: `directory ${jobsDir}/${entry.name}` });
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return leftovers;
  }

  async cleanupLeftovers(): Promise<Leftover[]> {
    const leftovers = await this.listLeftovers();
    const jobsDir = this.#jobsDir;
    await killMarkedProcesses((dir) => dir.startsWith(`${jobsDir}/`) && !this.#active.has(dir));
    for (const leftover of leftovers) {
      if (leftover.description.startsWith("directory ")) {
        await Deno.remove(leftover.description.slice("directory ".length), { recursive: true })
          .catch(() => {});
      }
      this.#log.info("removed a leftover", { job_id: leftover.job_id, what: leftover.description });
    }
    return leftovers;
  }
}

/** One job's local host: its directory, its channel listener and its puppet process. */
class LocalHost {
  #listener?: Deno.TcpListener;
  #channel?: PuppetChannel;
  #puppet?: Deno.ChildProcess;
  #readyTimer?: ReturnType<typeof setTimeout>;
  #stopping?: Promise<void>;
  #echo: Promise<void> = Promise.resolve();

  constructor(
    private readonly job: JobSpec,
    private readonly dir: string,
    private readonly events: HostEvents,
    private readonly options: LocalDriverOptions,
    private readonly log: Logger,
  ) {}

  async launch(signal: AbortSignal): Promise<void> {
    const aborted = () => {
      if (signal.aborted) {
        throw new HostStartError("Cannot start a local host: the job was stopped");
      }
    };
    this.events.progress("allocating", "creating the job directory");
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const secret = generatePuppetSecret();
    await Deno.writeTextFile(`${this.dir}/secret`, secret, { mode: 0o600 });
    aborted();

    const { events } = this;
    const hostEvents: HostEvents = {
      progress: (subState, message) => events.progress(subState, message),
      ready: () => {
        clearTimeout(this.#readyTimer);
        events.ready();
      },
      // A developer watching `tml supervisor local` sees the workload's output as it comes.
      output: (bytes) => {
        events.output(bytes);
        this.#echo = this.#echo.then(async () => {
          for (let at = 0; at < bytes.length;) at += await Deno.stdout.write(bytes.subarray(at));
        }).catch(() => {});
      },
      workloadFinished: (result) => events.workloadFinished(result),
      terminateRequested: () => events.terminateRequested(),
      hostLost: (loss) => events.hostLost(loss),
    };
    const channel = new PuppetChannel({
      secret,
      job: {
        job_id: this.job.job_id,
        parameters: this.job.parameters,
        ssh_keys: this.job.ssh_keys,
        workload: this.job.workload,
      },
      events: hostEvents,
      log: this.log,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
    });
    this.#channel = channel;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listener = listener;
    (async () => {
      for await (const connection of listener) void channel.serve(connection);
    })().catch(() => {}); // The listener closed.

    this.events.progress("booting", "starting the puppet");
    aborted();
    const readyTimeoutMs = this.options.readyTimeoutMs ?? 60_000;
    this.#readyTimer = setTimeout(() => {
      channel.close();
      this.events.hostLost({
        kind: "unresponsive",
        message: `the puppet did not report ready within ${readyTimeoutMs} ms`,
      });
    }, readyTimeoutMs);
    // The puppet writes to a log file, not to this process's stdout: a puppet that outlives a
    // killed supervisor must not hold the supervisor's pipes open (or die writing to them).
    const puppet = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        'log="$1"; shift; exec "$@" >>"$log" 2>&1',
        "tml-local-host",
        `${this.dir}/puppet.log`,
        Deno.execPath(),
        "run",
        "-A",
        MAIN_TS,
        "puppet",
        "--channel",
        `tcp:127.0.0.1:${listener.addr.port}`,
        "--secret-file",
        `${this.dir}/secret`,
        "--root",
        `${this.dir}/run-tml`,
        "--stop-grace",
        `${this.options.stopGraceMs ?? 5_000}ms`,
      ],
      cwd: this.dir,
      env: { [HOST_MARK_VARIABLE]: this.dir },
      stdin: "null",
      stdout: "null",
      stderr: "null",
      // Its own process group: a Ctrl-C meant for the supervisor does not reach the job.
      detached: true,
    }).spawn();
    this.#puppet = puppet;
    void puppet.status.then((status) => {
      if (this.#stopping !== undefined) return;
      clearTimeout(this.#readyTimer);
      channel.close();
      const how = status.signal !== null
        ? `was killed by ${status.signal}`
        : `exited with code ${status.code}`;
      this.events.hostLost({
        kind: status.success ? "exited" : "crashed",
        message: `the puppet ${how}`,
      });
    });
  }

  /** The puppet's last log line (it never logs secret values), to say why it ended. */
  async #lastLogLine(): Promise<string | undefined> {
    const text = await Deno.readTextFile(`${this.dir}/puppet.log`).catch(() => "");
    const line = text.trimEnd().split("\n").at(-1)?.replace(/^\S+ \w+ puppet: /, "");
    return line === undefined || line === "" ? undefined : line.slice(0, 500);
  }

  /** Ends the job's processes and removes its directory; later calls wait for the first. */
  stop(reason: string): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#readyTimer);
      const puppet = this.#puppet;
      await this.#channel?.shutdown(reason);
      if (puppet !== undefined) {
        // The puppet stops its workload (SIGTERM, then SIGKILL after the grace) and exits.
        const graceMs = (this.options.stopGraceMs ?? 5_000) + 5_000;
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          puppet.status,
          new Promise((resolve) => (timer = setTimeout(resolve, graceMs))),
        ]);
        clearTimeout(timer);
      }
      // Whatever is left (a stuck puppet, the workload's background children) goes now.
      await killMarkedProcesses((dir) => dir === this.dir);
      await puppet?.status;
      this.#channel?.close();
      this.#listener?.close();
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    })();
    return this.#stopping;
  }
}
