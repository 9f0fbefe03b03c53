/**
 * The job lifecycle of `shared/spec/job-lifecycle.md` as data: the three tables (legal state
 * transitions, legal exit-status transitions, which exit status may be set in which state),
 * who may move a job into each state and who may set each status, and pure functions that
 * apply a change for an actor or say why it is ignored.
 *
 *   queued ──> scheduled ──> initializing <──> ready ──> terminating ──> terminated
 *     │            │              │             │                          ^
 *     └────────────┴──────────────┴─────────────┴──────────────────────────┘
 *   (states may be skipped; every job ends in `terminated`; ready -> initializing is a restart)
 */
import { z } from "zod";

export const ExecutionState = z.enum([
  "queued",
  "scheduled",
  "initializing",
  "ready",
  "terminating",
  "terminated",
]);
export type ExecutionState = z.infer<typeof ExecutionState>;

export const ExitStatus = z.enum([
  "supervisor_match_error",
  "queue_timeout",
  "internal_supervisor_error",
  "supervisor_host_start_error",
  "job_canceled",
  "workload_finished_success",
  "workload_finished_error",
  "workload_finished_unknown",
  "supervisor_dropped_job",
  "job_timeout",
]);
export type ExitStatus = z.infer<typeof ExitStatus>;

export const Actor = z.enum(["switchboard", "supervisor"]);
export type Actor = z.infer<typeof Actor>;

export interface JobLifecycle {
  state: ExecutionState;
  exitStatus: ExitStatus | null;
}

export type LifecycleDecision = { ok: true; next: JobLifecycle } | { ok: false; reason: string };

/** Legal state transitions: from-state -> the states it may move to (spec table 1). */
export const STATE_TRANSITIONS: Readonly<Record<ExecutionState, readonly ExecutionState[]>> = {
  queued: ["scheduled", "initializing", "ready", "terminating", "terminated"],
  scheduled: ["initializing", "ready", "terminating", "terminated"],
  initializing: ["ready", "terminating", "terminated"],
  ready: ["initializing", "terminating", "terminated"],
  terminating: ["terminated"],
  terminated: [],
};

/** Who may move a job into each state. */
export const STATE_ACTORS: Readonly<Record<ExecutionState, readonly Actor[]>> = {
  queued: ["switchboard"],
  scheduled: ["switchboard"],
  initializing: ["supervisor"],
  ready: ["supervisor"],
  terminating: ["supervisor"],
  terminated: ["supervisor", "switchboard"],
};

const WORKLOAD_FINISHED: readonly ExitStatus[] = [
  "workload_finished_success",
  "workload_finished_error",
  "workload_finished_unknown",
];

/** What may replace a workload result: the row `workload_finished_*` of spec table 2. */
const AFTER_WORKLOAD_RESULT: readonly ExitStatus[] = [
  "internal_supervisor_error",
  "supervisor_host_start_error",
  "job_canceled",
  ...WORKLOAD_FINISHED,
  "supervisor_dropped_job",
  "job_timeout",
];

/**
 * Legal exit-status transitions: current status -> statuses that may replace it (spec
 * table 2). A workload result may be replaced by a later workload result or by any final
 * status except `supervisor_match_error` and `queue_timeout`; final statuses never change.
 */
export const EXIT_STATUS_TRANSITIONS: Readonly<Record<ExitStatus, readonly ExitStatus[]>> = {
  supervisor_match_error: [],
  queue_timeout: [],
  internal_supervisor_error: [],
  supervisor_host_start_error: [],
  job_canceled: [],
  workload_finished_success: AFTER_WORKLOAD_RESULT,
  workload_finished_error: AFTER_WORKLOAD_RESULT,
  workload_finished_unknown: AFTER_WORKLOAD_RESULT,
  supervisor_dropped_job: [],
  job_timeout: [],
};

const DISPATCHED: readonly ExecutionState[] = ["scheduled", "initializing", "ready", "terminating"];

/** The execution states in which each exit status may be set (spec table 3). */
export const EXIT_STATUS_STATES: Readonly<Record<ExitStatus, readonly ExecutionState[]>> = {
  supervisor_match_error: ["queued"],
  queue_timeout: ["queued"],
  internal_supervisor_error: DISPATCHED,
  supervisor_host_start_error: DISPATCHED,
  job_canceled: DISPATCHED,
  workload_finished_success: DISPATCHED,
  workload_finished_error: DISPATCHED,
  workload_finished_unknown: DISPATCHED,
  supervisor_dropped_job: DISPATCHED,
  job_timeout: DISPATCHED,
};

/** Who may set each exit status. */
export const EXIT_STATUS_ACTORS: Readonly<Record<ExitStatus, readonly Actor[]>> = {
  supervisor_match_error: ["switchboard"],
  queue_timeout: ["switchboard"],
  internal_supervisor_error: ["switchboard", "supervisor"],
  supervisor_host_start_error: ["supervisor"],
  job_canceled: ["switchboard", "supervisor"],
  workload_finished_success: ["supervisor"],
  workload_finished_error: ["supervisor"],
  workload_finished_unknown: ["supervisor"],
  supervisor_dropped_job: ["switchboard"],
  job_timeout: ["switchboard", "supervisor"],
};

/** The "final once set?" column. */
export function isFinalExitStatus(status: ExitStatus): boolean {
  return !WORKLOAD_FINISHED.includes(status);
}

/** Failures of the testbed rather than of the workload: the restart policy retries these. */
export function isInfrastructureFailure(status: ExitStatus): boolean {
  return status === "internal_supervisor_error" || status === "supervisor_host_start_error" ||
    status === "supervisor_dropped_job";
}

/**
 * Moves a job to `to` for `actor`. A report of the current state is accepted unchanged while
 * the host is up (`initializing`, `ready`, `terminating`): supervisors re-report a state with a
 * new sub-state. Any other diagonal cell is illegal, as the spec's table marks it.
 */
export function applyStateChange(
  current: JobLifecycle,
  to: ExecutionState,
  actor: Actor,
): LifecycleDecision {
  const cannot = `Cannot move job from "${current.state}" to "${to}"`;
  if (!STATE_ACTORS[to].includes(actor)) {
    return {
      ok: false,
      reason: `${cannot}: only the ${STATE_ACTORS[to].join(" or ")} may move a job into "${to}"`,
    };
  }
  if (current.state === to) {
    if (to === "initializing" || to === "ready" || to === "terminating") {
      return { ok: true, next: current };
    }
    return { ok: false, reason: `${cannot}: the job is already "${to}"` };
  }
  if (current.state === "terminated") {
    return { ok: false, reason: `${cannot}: the job is terminated` };
  }
  if (!STATE_TRANSITIONS[current.state].includes(to)) {
    return { ok: false, reason: `${cannot}: that transition is not allowed` };
  }
  return { ok: true, next: { state: to, exitStatus: current.exitStatus } };
}

/** Sets exit status `status` for `actor`, or says why it is ignored (the old one stays). */
export function applyExitStatus(
  current: JobLifecycle,
  status: ExitStatus,
  actor: Actor,
): LifecycleDecision {
  const cannot = `Cannot set exit status "${status}"`;
  if (!EXIT_STATUS_ACTORS[status].includes(actor)) {
    return {
      ok: false,
      reason: `${cannot}: only the ${EXIT_STATUS_ACTORS[status].join(" or ")} may set it`,
    };
  }
  if (!EXIT_STATUS_STATES[status].includes(current.state)) {
    return { ok: false, reason: `${cannot}: not allowed while the job is "${current.state}"` };
  }
  if (current.exitStatus === status) return { ok: true, next: current };
  if (
    current.exitStatus !== null && !EXIT_STATUS_TRANSITIONS[current.exitStatus].includes(status)
  ) {
    return {
      ok: false,
      reason: `${cannot}: the job already has the final status "${current.exitStatus}"`,
    };
  }
  return { ok: true, next: { state: current.state, exitStatus: status } };
}
