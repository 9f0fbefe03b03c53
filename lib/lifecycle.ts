/**
 * The job lifecycle of `shared/spec/job-lifecycle.md` as data, and pure functions that apply a
 * state or exit-status change for an actor or say, in a full sentence, why it is ignored. The
 * tables below are the spec's tables; change them only together with the spec.
 *
 *   ┌── switchboard ──┐    ┌─────────── supervisor ───────────┐    either
 *   queued ─> scheduled ─> initializing ─> ready ─> terminating ─> terminated
 *                               ^            │
 *                               └── restart ─┘
 *
 *   A job moves only rightwards, possibly skipping states, except `ready` -> `initializing`.
 *   The switchboard also terminates jobs itself (a dropped job, a timeout, a queued cancel).
 *   Exit status: unset -> a workload result (replaceable) -> a final status (frozen).
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

/** Legal state transitions, row = from, list = the "Y" columns (spec: "Legal transitions"). */
export const STATE_TRANSITIONS: Readonly<Record<ExecutionState, readonly ExecutionState[]>> = {
  queued: ["scheduled", "initializing", "ready", "terminating", "terminated"],
  scheduled: ["initializing", "ready", "terminating", "terminated"],
  initializing: ["ready", "terminating", "terminated"],
  ready: ["initializing", "terminating", "terminated"],
  terminating: ["terminated"],
  terminated: [],
};

/** "who may move a job into it" (spec: "Execution state"). */
export const STATE_ACTORS: Readonly<Record<ExecutionState, readonly Actor[]>> = {
  queued: ["switchboard"],
  scheduled: ["switchboard"],
  initializing: ["supervisor"],
  ready: ["supervisor"],
  terminating: ["supervisor"],
  terminated: ["supervisor", "switchboard"],
};

/**
 * The states that "may carry sub-states": a supervisor re-reports them with a new sub-state,
 * so a same-state report is accepted (unchanged) here and only here. Everywhere else the
 * spec's diagonal "-" holds and it is illegal.
 */
export const SUB_STATE_CARRIERS: readonly ExecutionState[] = [
  "initializing",
  "ready",
  "terminating",
];

/** "final once set?" (spec: "Exit status"). */
export const FINAL_EXIT_STATUS: Readonly<Record<ExitStatus, boolean>> = {
  supervisor_match_error: true,
  queue_timeout: true,
  internal_supervisor_error: true,
  supervisor_host_start_error: true,
  job_canceled: true,
  workload_finished_success: false,
  workload_finished_error: false,
  workload_finished_unknown: false,
  supervisor_dropped_job: true,
  job_timeout: true,
};

/**
 * Legal exit-status transitions, row = current status, list = the "Y" columns. The
 * `workload_finished_*` row also lists the other two workload results: the spec's "-" on that
 * diagonal is about the same status, and "a workload result may be replaced by a later
 * workload result". Setting the status a job already has is accepted unchanged.
 */
export const EXIT_STATUS_TRANSITIONS: Readonly<Record<ExitStatus, readonly ExitStatus[]>> = {
  supervisor_match_error: [],
  queue_timeout: [],
  internal_supervisor_error: [],
  supervisor_host_start_error: [],
  job_canceled: [],
  workload_finished_success: [
    "internal_supervisor_error",
    "supervisor_host_start_error",
    "job_canceled",
    "workload_finished_error",
    "workload_finished_unknown",
    "supervisor_dropped_job",
    "job_timeout",
  ],
  workload_finished_error: [
    "internal_supervisor_error",
    "supervisor_host_start_error",
    "job_canceled",
    "workload_finished_success",
    "workload_finished_unknown",
    "supervisor_dropped_job",
    "job_timeout",
  ],
  workload_finished_unknown: [
    "internal_supervisor_error",
    "supervisor_host_start_error",
    "job_canceled",
    "workload_finished_success",
    "workload_finished_error",
    "supervisor_dropped_job",
    "job_timeout",
  ],
  supervisor_dropped_job: [],
  job_timeout: [],
};

/** Which exit status may be set in which execution state, list = the "Y" columns. */
export const EXIT_STATUS_STATES: Readonly<Record<ExitStatus, readonly ExecutionState[]>> = {
  supervisor_match_error: ["queued"],
  queue_timeout: ["queued"],
  internal_supervisor_error: ["scheduled", "initializing", "ready", "terminating"],
  supervisor_host_start_error: ["scheduled", "initializing", "ready", "terminating"],
  job_canceled: ["scheduled", "initializing", "ready", "terminating"],
  workload_finished_success: ["scheduled", "initializing", "ready", "terminating"],
  workload_finished_error: ["scheduled", "initializing", "ready", "terminating"],
  workload_finished_unknown: ["scheduled", "initializing", "ready", "terminating"],
  supervisor_dropped_job: ["scheduled", "initializing", "ready", "terminating"],
  job_timeout: ["scheduled", "initializing", "ready", "terminating"],
};

/**
 * Who may set each exit status. The switchboard alone knows about matching, the queue and
 * dropped jobs; only the host side can report a start failure or a workload result; either
 * side may hit an internal error, record a cancel (the switchboard records a user's, a
 * supervisor reports one it carried out) or enforce the job timeout.
 */
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

/** The "final once set?" column: a final status wins over any later report. */
export function isFinalExitStatus(status: ExitStatus): boolean {
  return FINAL_EXIT_STATUS[status];
}

/** Failures of the testbed rather than of the workload: the restart policy retries these. */
export function isInfrastructureFailure(status: ExitStatus): boolean {
  return status === "internal_supervisor_error" || status === "supervisor_host_start_error" ||
    status === "supervisor_dropped_job";
}

/**
 * Moves a job to `to` for `actor`, or says why the move is ignored. A report of the current
 * state is accepted unchanged for the states in `SUB_STATE_CARRIERS`; any other same-state
 * report is illegal, as the spec's diagonal says. The exit status is untouched.
 */
export function applyStateChange(
  current: JobLifecycle,
  to: ExecutionState,
  actor: Actor,
): LifecycleDecision {
  const cannot = `Cannot move job from "${current.state}" to "${to}"`;
  if (current.state === "terminated") {
    return { ok: false, reason: `${cannot}: the job is terminated` };
  }
  if (!STATE_ACTORS[to].includes(actor)) {
    return {
      ok: false,
      reason: `${cannot}: only the ${or(STATE_ACTORS[to])} may move a job into "${to}"`,
    };
  }
  if (current.state === to) {
    return SUB_STATE_CARRIERS.includes(to)
      ? { ok: true, next: current }
      : { ok: false, reason: `${cannot}: the job is already "${to}"` };
  }
  const allowed = STATE_TRANSITIONS[current.state];
  if (!allowed.includes(to)) {
    return {
      ok: false,
      reason: `${cannot}: the job may only move on to ${or(allowed.map(quote))}`,
    };
  }
  return { ok: true, next: { state: to, exitStatus: current.exitStatus } };
}

/**
 * Sets exit status `status` for `actor`, or says why it is ignored (the previous status then
 * stays, as the spec prescribes). Checks, in order: that the job is not terminated, who may
 * set it, the state it may be set in, and what it may replace. Setting the status the job
 * already has is accepted unchanged.
 */
export function applyExitStatus(
  current: JobLifecycle,
  status: ExitStatus,
  actor: Actor,
): LifecycleDecision {
  const cannot = `Cannot set exit status "${status}" while the job is "${current.state}"`;
  if (current.state === "terminated") {
    return { ok: false, reason: `${cannot}: the exit status of a terminated job never changes` };
  }
  if (!EXIT_STATUS_ACTORS[status].includes(actor)) {
    return {
      ok: false,
      reason: `${cannot}: only the ${or(EXIT_STATUS_ACTORS[status])} may set it`,
    };
  }
  const states = EXIT_STATUS_STATES[status];
  if (!states.includes(current.state)) {
    return {
      ok: false,
      reason: `${cannot}: only while it is ${or(states.map(quote))}`,
    };
  }
  if (current.exitStatus === status) return { ok: true, next: current };
  if (
    current.exitStatus !== null && !EXIT_STATUS_TRANSITIONS[current.exitStatus].includes(status)
  ) {
    const previous = current.exitStatus;
    return {
      ok: false,
      reason: isFinalExitStatus(previous)
        ? `${cannot}: the job already has the final status "${previous}"`
        : `${cannot}: the workload result "${previous}" may not be replaced by it`,
    };
  }
  return { ok: true, next: { state: current.state, exitStatus: status } };
}

function quote(value: string): string {
  return `"${value}"`;
}

/** `a`, `a or b`, `a, b or c`. */
function or(values: readonly string[]): string {
  return values.length <= 1
    ? values.join("")
    : `${values.slice(0, -1).join(", ")} or ${values.at(-1)}`;
}
