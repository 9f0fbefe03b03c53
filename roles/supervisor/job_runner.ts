/**
 * Runs one job at a time on the supervisor's one host, and reports every step as a job update.
 * The supervisor's side of the lifecycle:
 *
 *   start_job ─> initializing ─(progress: allocating, fetching_image, booting …)
 *                    │     │
 *                    │     └─ start fails / host lost ─────────────────────────┐
 *                    v puppet ready                                            │
 *                  ready ─ workload result / terminate request / host lost ─┐  │
 *                    │                                                      v  v
 *   stop_job ────────┴─────────────────────────────────────────────────> terminating ─> terminated
 *                                                       (exit status here)    (host stopped)
 *
 * The exit status travels with `terminating`, so it is recorded before the host is torn down:
 *   workload result          -> workload_finished_success | _error | _unknown (message: exit code)
 *   terminate request        -> workload_finished_unknown, unless a result came first
 *   host start failure       -> supervisor_host_start_error, with what failed
 *   host lost before ready   -> supervisor_host_start_error
 *   host lost while ready    -> workload_finished_unknown when it exited by itself,
 *                               workload_finished_error when it crashed or hung
 *   a failure of this code   -> internal_supervisor_error
 *   the supervisor shuts down -> internal_supervisor_error
 *   stop_job                 -> none: the switchboard already recorded job_canceled/job_timeout
 */
import type { ExitStatus } from "../../lib/lifecycle.ts";
import type { Logger } from "../../lib/log.ts";
import type {
  HeldJob,
  JobSpec,
  StopReason,
  SupervisorReportedState,
} from "../../lib/protocol/supervisor.ts";
import {
  type HostDriver,
  type HostEvents,
  type HostLoss,
  HostStartError,
  type RunningHost,
  type WorkloadResult,
} from "./host_driver.ts";

export interface JobReport {
  job_id: string;
  state?: SupervisorReportedState;
  sub_state?: string | null;
  exit_status?: ExitStatus;
  message?: string;
}

export interface JobReporter {
  report(update: JobReport): void;
  /** A chunk of the job's console at its byte offset. */
  console(jobId: string, offset: number, bytes: Uint8Array): void;
}

interface CurrentJob {
  spec: JobSpec;
  state: SupervisorReportedState;
  subState: string | null;
  starting?: Promise<RunningHost | undefined>;
  abort: AbortController;
  ending?: Promise<void>;
  consoleBytes: number;
}

interface Ending {
  status?: ExitStatus;
  message?: string;
  /** Why the host is stopped, for the driver's log. */
  reason: string;
}

const OUTCOME_STATUS: Record<WorkloadResult["outcome"], ExitStatus> = {
  success: "workload_finished_success",
  error: "workload_finished_error",
  unknown: "workload_finished_unknown",
};

export type StartAnswer = { ok: true } | { ok: false; message: string };

export class JobRunner {
  #current?: CurrentJob;

  constructor(
    private readonly driver: HostDriver,
    private readonly reporter: JobReporter,
    private readonly log: Logger,
  ) {}

  /** The job this supervisor holds, for the hello after a (re)connect. */
  heldJobs(): HeldJob[] {
    const current = this.#current;
    return current === undefined
      ? []
      : [{ job_id: current.spec.job_id, state: current.state, sub_state: current.subState }];
  }

  /** Accepts a job; idempotent for the job it runs, refused while busy with another. */
  start(spec: JobSpec): StartAnswer {
    if (this.#current !== undefined) {
      if (this.#current.spec.job_id === spec.job_id) return { ok: true };
      return {
        ok: false,
        message: `Cannot start job "${spec.job_id}": this supervisor is busy with job ` +
          `"${this.#current.spec.job_id}"`,
      };
    }
    const current: CurrentJob = {
      spec,
      state: "initializing",
      subState: null,
      abort: new AbortController(),
      consoleBytes: 0,
    };
    this.#current = current;
    this.log.info("starting job", { job_id: spec.job_id });
    this.#report(current, { state: "initializing", sub_state: null });
    // Launched from a microtask, so `starting` is set before the driver can report anything.
    current.starting = Promise.resolve().then(() => this.#launch(current));
    return { ok: true };
  }

  /** Stops the job on the switchboard's request; a stop for a job not held changes nothing. */
  async stop(jobId: string, reason: StopReason): Promise<void> {
    const current = this.#current;
    if (current === undefined || current.spec.job_id !== jobId) return;
    this.log.info("stopping job", { job_id: jobId, reason });
    await this.#end(current, { reason: `stop_job: ${reason}` });
  }

  /** Ends the current job because the supervisor itself is going away. */
  async shutdown(): Promise<void> {
    const current = this.#current;
    if (current === undefined) return;
    await this.#end(current, {
      status: "internal_supervisor_error",
      message: "The supervisor shut down while running the job",
      reason: "supervisor shutdown",
    });
  }

  async #launch(current: CurrentJob): Promise<RunningHost | undefined> {
    try {
      return await this.driver.start(current.spec, this.#events(current), current.abort.signal);
    } catch (error) {
      if (current.ending === undefined) {
        const failedToStart = error instanceof HostStartError;
        this.log.warn("host failed to start", {
          job_id: current.spec.job_id,
          error: (error as Error).message,
        });
        void this.#end(current, {
          status: failedToStart ? "supervisor_host_start_error" : "internal_supervisor_error",
          message: failedToStart
            ? (error as Error).message
            : `Cannot start the host: ${(error as Error).message}`,
          reason: "start failed",
        });
      }
      return undefined;
    }
  }

  #events(current: CurrentJob): HostEvents {
    const live = () => current.ending === undefined;
    return {
      progress: (subState, message) => {
        if (live() && current.state === "initializing") {
          this.#report(current, { state: "initializing", sub_state: subState, message });
        }
      },
      ready: () => {
        if (live() && current.state !== "ready") {
          this.#report(current, { state: "ready", sub_state: null });
        }
      },
      output: (bytes) => {
        if (bytes.length === 0) return;
        this.reporter.console(current.spec.job_id, current.consoleBytes, bytes);
        current.consoleBytes += bytes.length;
      },
      workloadFinished: (result) => {
        const message = result.message ??
          (result.exit_code === undefined ? undefined : `exit code ${result.exit_code}`);
        void this.#end(current, {
          status: OUTCOME_STATUS[result.outcome],
          message,
          reason: "the workload finished",
        });
      },
      terminateRequested: () => {
        void this.#end(current, {
          status: "workload_finished_unknown",
          message: "the host asked to end the job",
          reason: "the host asked to end the job",
        });
      },
      hostLost: (loss) => void this.#end(current, this.#lossEnding(current, loss)),
    };
  }

  #lossEnding(current: CurrentJob, loss: HostLoss): Ending {
    if (current.state !== "ready") {
      return {
        status: "supervisor_host_start_error",
        message: `The host failed before it was ready: ${loss.message}`,
        reason: "host lost",
      };
    }
    return {
      status: loss.kind === "exited" ? "workload_finished_unknown" : "workload_finished_error",
      message: `The host ended without a workload result: ${loss.message}`,
      reason: "host lost",
    };
  }

  /** Reports the end and tears the host down, once; later calls wait for the first. */
  #end(current: CurrentJob, ending: Ending): Promise<void> {
    current.ending ??= (async () => {
      this.#report(current, {
        state: "terminating",
        sub_state: "shutting_down",
        exit_status: ending.status,
        message: ending.message,
      });
      current.abort.abort();
      try {
        const host = await current.starting;
        await host?.stop(ending.reason);
      } catch (error) {
        // The job still ends; its status stays what the host reported.
        this.log.error("host teardown failed", {
          job_id: current.spec.job_id,
          error: (error as Error).message,
        });
      }
      this.#report(current, { state: "terminated", sub_state: null });
      if (this.#current === current) this.#current = undefined;
      this.log.info("job ended", { job_id: current.spec.job_id, exit_status: ending.status });
    })();
    return current.ending;
  }

  #report(current: CurrentJob, update: Omit<JobReport, "job_id">): void {
    if (update.state !== undefined) current.state = update.state;
    if (update.sub_state !== undefined) current.subState = update.sub_state;
    this.reporter.report({ job_id: current.spec.job_id, ...update });
  }
}
