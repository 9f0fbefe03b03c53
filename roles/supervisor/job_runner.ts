/**
 * Runs one job at a time on a supervisor's host and reports every step. The supervisor's side
 * of the lifecycle:
 *
 *   start_job ─> initializing (allocating, fetching_image, booting…) ─> ready ─┐
 *        │ start fails                                                        │ workload result,
 *        v                                                                    │ terminate request,
 *   terminated + supervisor_host_start_error          stop_job ─> terminating ─┴> host failure
 *                                                                 │
 *                                                                 v
 *                                                   terminated (+ exit status when ours)
 *
 * On `stop_job` the switchboard has already recorded the exit status (canceled, timeout), so
 * the runner only reports `terminating` and `terminated`.
 */
import type { ExitStatus } from "../../lib/lifecycle.ts";
import type { Logger } from "../../lib/log.ts";
import type {
  HeldJob,
  JobSpec,
  StopReason,
  SupervisorReportedState,
} from "../../lib/protocol/supervisor.ts";
import type { WorkloadOutcome } from "../../lib/protocol/puppet.ts";
import type { HostDriver, HostEvents, RunningHost } from "./host_driver.ts";

export interface JobReporter {
  report(update: {
    job_id: string;
    state?: SupervisorReportedState;
    sub_state?: string | null;
    exit_status?: ExitStatus;
    message?: string;
  }): void;
  /** A chunk of the job's console at its byte offset. */
  console(jobId: string, offset: number, bytes: Uint8Array): void;
}

interface CurrentJob {
  spec: JobSpec;
  state: SupervisorReportedState;
  subState: string | null;
  host?: RunningHost;
  abort: AbortController;
  ending?: Promise<void>;
  consoleBytes: number;
}

const OUTCOME_STATUS: Record<WorkloadOutcome, ExitStatus> = {
  success: "workload_finished_success",
  error: "workload_finished_error",
  unknown: "workload_finished_unknown",
};

export class JobRunner {
  #current?: CurrentJob;

  constructor(
    private readonly driver: HostDriver,
    private readonly reporter: JobReporter,
    private readonly log: Logger,
  ) {}

  heldJobs(): HeldJob[] {
    const current = this.#current;
    return current === undefined
      ? []
      : [{ job_id: current.spec.job_id, state: current.state, sub_state: current.subState }];
  }

  /** Accepts a job (idempotent for the job it already runs); refuses while busy with another. */
  start(spec: JobSpec): { ok: true } | { ok: false; message: string } {
    if (this.#current !== undefined) {
      if (this.#current.spec.job_id === spec.job_id) return { ok: true };
      return { ok: false, message: `busy with job ${this.#current.spec.job_id}` };
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
    void this.#launch(current);
    return { ok: true };
  }

  /** Stops the job on the switchboard's request; a stop for another job is a no-op. */
  async stop(jobId: string, reason: StopReason): Promise<void> {
    const current = this.#current;
    if (current === undefined || current.spec.job_id !== jobId) return;
    this.log.info("stopping job", { job_id: jobId, reason });
    await this.#end(current, undefined, `stopped: ${reason}`);
  }

  async #launch(current: CurrentJob): Promise<void> {
    const events: HostEvents = {
      subState: (subState, message) => {
        if (current.ending !== undefined) return;
        this.#report(current, { state: current.state, sub_state: subState, message });
      },
      ready: () => {
        if (current.ending !== undefined || current.state === "ready") return;
        this.#report(current, { state: "ready", sub_state: null });
      },
      workloadFinished: (outcome, exitCode, message) => {
        const detail = message ?? (exitCode === undefined ? undefined : `exit code ${exitCode}`);
        void this.#end(current, OUTCOME_STATUS[outcome], detail);
      },
      terminateRequested: () => {
        void this.#end(current, "workload_finished_unknown", "the host asked to terminate the job");
      },
      failed: (message) => {
        const status = current.state === "ready"
          ? "internal_supervisor_error"
          : "supervisor_host_start_error";
        void this.#end(current, status, message);
      },
      output: (_stream, data) => {
        const bytes = new TextEncoder().encode(data);
        this.reporter.console(current.spec.job_id, current.consoleBytes, bytes);
        current.consoleBytes += bytes.length;
      },
    };
    try {
      current.host = await this.driver.start(current.spec, events, current.abort.signal);
      if (current.ending !== undefined) await current.host.stop();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.log.warn("host failed to start", { job_id: current.spec.job_id, error: message });
      await this.#end(current, "supervisor_host_start_error", message);
    }
  }

  /** Tears the host down once and reports the end; later calls wait for the first. */
  #end(
    current: CurrentJob,
    status: ExitStatus | undefined,
    message: string | undefined,
  ): Promise<void> {
    current.ending ??= (async () => {
      if (status !== undefined) {
        this.#report(current, { state: current.state, exit_status: status, message });
      }
      this.#report(current, { state: "terminating", sub_state: "shutting_down" });
      current.abort.abort();
      try {
        await current.host?.stop();
      } catch (error) {
        this.log.error("host teardown failed", {
          job_id: current.spec.job_id,
          error: (error as Error).message,
        });
      }
      this.#report(current, { state: "terminated", sub_state: null });
      if (this.#current === current) this.#current = undefined;
      this.log.info("job ended", { job_id: current.spec.job_id, exit_status: status });
    })();
    return current.ending;
  }

  #report(
    current: CurrentJob,
    update: {
      state: SupervisorReportedState;
      sub_state?: string | null;
      exit_status?: ExitStatus;
      message?: string;
    },
  ): void {
    current.state = update.state;
    if (update.sub_state !== undefined) current.subState = update.sub_state;
    this.reporter.report({ job_id: current.spec.job_id, ...update });
  }
}
