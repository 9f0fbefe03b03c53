/**
 * Plans a change to one job, without I/O: applies the rules of `lib/lifecycle.ts` for the
 * actor, and says what the row becomes, which history events to record, what was rejected and
 * why, and whether the restart policy re-enqueues the job. `JobStore` writes the plan.
 */
import {
  type Actor,
  applyExitStatus,
  applyStateChange,
  type ExecutionState,
  type ExitStatus,
  isInfrastructureFailure,
  type JobLifecycle,
} from "../../lib/lifecycle.ts";
import type { JobEvent } from "../../lib/protocol/api.ts";
import type { StopReason } from "../../lib/protocol/supervisor.ts";
import type { JobRow } from "./job_row.ts";

export type EventActor = JobEvent["actor"];

export interface JobChange {
  state?: ExecutionState;
  /** Informational sub-state; `undefined` keeps the current one, `null` clears it. */
  subState?: string | null;
  exitStatus?: ExitStatus;
  message?: string;
}

export interface TransitionOptions {
  actor: EventActor;
  /** Reject the change unless the job is assigned to this supervisor. */
  onlyIfSupervisor?: string;
  /** Assign the job to this supervisor (with `state: "scheduled"`). */
  assignSupervisor?: string;
  /** Record the switchboard's intent that the supervisor stop the job. */
  stop?: { reason: StopReason };
}

export interface PendingEvent {
  actor: EventActor;
  kind: "state" | "exit_status";
  state: ExecutionState | null;
  subState: string | null;
  exitStatus: ExitStatus | null;
  message: string | null;
}

export interface TransitionPlan {
  next: JobRow;
  events: PendingEvent[];
  rejected: string[];
  changed: boolean;
  terminatedNow: boolean;
  /** The restart policy applies: enqueue a copy of the job with one restart fewer. */
  restart: boolean;
}

export function planTransition(
  current: JobRow,
  change: JobChange,
  options: TransitionOptions,
  now: Date,
): TransitionPlan {
  const unchanged = (rejected: string[]): TransitionPlan => ({
    next: current,
    events: [],
    rejected,
    changed: false,
    terminatedNow: false,
    restart: false,
  });
  if (
    options.onlyIfSupervisor !== undefined && current.supervisor_id !== options.onlyIfSupervisor
  ) {
    return unchanged([
      `Cannot update job "${current.job_id}": it is not assigned to this supervisor`,
    ]);
  }
  const lifecycleActor: Actor = options.actor === "supervisor" ? "supervisor" : "switchboard";
  const rejected: string[] = [];
  const next: JobRow = { ...current };
  const events: PendingEvent[] = [];
  let lifecycle: JobLifecycle = { state: current.state, exitStatus: current.exit_status };

  if (change.exitStatus !== undefined) {
    const decision = applyExitStatus(lifecycle, change.exitStatus, lifecycleActor);
    if (!decision.ok) {
      rejected.push(decision.reason);
    } else if (decision.next.exitStatus !== lifecycle.exitStatus || change.message !== undefined) {
      lifecycle = decision.next;
      next.exit_status = lifecycle.exitStatus;
      next.exit_message = change.message ?? null;
      events.push({
        actor: options.actor,
        kind: "exit_status",
        state: null,
        subState: null,
        exitStatus: lifecycle.exitStatus,
        message: change.message ?? null,
      });
    }
  }

  if (change.state !== undefined) {
    const decision = applyStateChange(lifecycle, change.state, lifecycleActor);
    const subState = change.subState === undefined ? current.sub_state : change.subState;
    if (!decision.ok) {
      rejected.push(decision.reason);
    } else if (decision.next.state !== lifecycle.state || subState !== current.sub_state) {
      lifecycle = decision.next;
      next.state = lifecycle.state;
      next.sub_state = lifecycle.state === "terminated" ? null : subState;
      events.push({
        actor: options.actor,
        kind: "state",
        state: next.state,
        subState: next.sub_state,
        exitStatus: null,
        message: change.exitStatus === undefined ? change.message ?? null : null,
      });
    }
  }

  let changed = events.length > 0;
  if (options.assignSupervisor !== undefined && next.state === "scheduled" && changed) {
    next.supervisor_id = options.assignSupervisor;
    next.dispatched_at = now;
    next.start_acked = false;
  }
  if (options.stop !== undefined && next.state !== "terminated" && next.stop_reason === null) {
    next.stop_reason = options.stop.reason;
    next.stop_requested_at = now;
    next.cancel_requested = options.stop.reason === "canceled";
    changed = true;
  }
  // A supervisor's own report about a job proves it received start_job. (Its ack is noted in
  // memory by JobStore.noteStartAcked and written with the next change: if a crash loses it,
  // a reconnecting supervisor without the job gets start_job again instead of a drop.)
  if (options.actor === "supervisor") next.start_acked = true;

  const terminatedNow = current.state !== "terminated" && next.state === "terminated";
  if (terminatedNow) {
    next.terminated_at = now;
    if (next.exit_status === null) {
      // Every terminated job carries a status: one that ends without any is an internal error.
      next.exit_status = "internal_supervisor_error";
      next.exit_message = "the job terminated without an exit status";
      events.push({
        actor: "switchboard",
        kind: "exit_status",
        state: null,
        subState: null,
        exitStatus: next.exit_status,
        message: next.exit_message,
      });
    }
  }
  if (!changed) return unchanged(rejected);
  const restart = terminatedNow && next.exit_status !== null &&
    isInfrastructureFailure(next.exit_status) && next.restart_count > 0;
  return { next, events, rejected, changed, terminatedNow, restart };
}

/**
 * Plans several changes to one job, in order, as one write: each change sees the job as the
 * previous one left it. Returns the combined plan and, per change, why it was rejected.
 */
export function planTransitions(
  current: JobRow,
  changes: readonly JobChange[],
  options: TransitionOptions,
  now: Date,
): { plan: TransitionPlan; rejectedPerChange: string[][] } {
  let next = current;
  const events: PendingEvent[] = [];
  const rejectedPerChange: string[][] = [];
  let changed = false;
  for (const change of changes) {
    const step = planTransition(next, change, options, now);
    rejectedPerChange.push(step.rejected);
    events.push(...step.events);
    changed ||= step.changed;
    next = step.next;
  }
  const terminatedNow = current.state !== "terminated" && next.state === "terminated";
  const restart = terminatedNow && next.exit_status !== null &&
    isInfrastructureFailure(next.exit_status) && next.restart_count > 0;
  return {
    plan: { next, events, rejected: rejectedPerChange.flat(), changed, terminatedNow, restart },
    rejectedPerChange,
  };
}

/**
 * The documented exception of the lifecycle spec: canceling a job that is still queued
 * terminates it at once with `job_canceled`, outside the status-in-state table (the job never
 * reached a supervisor).
 */
export function planQueuedCancel(current: JobRow, now: Date): TransitionPlan | undefined {
  if (current.state !== "queued") return undefined;
  return {
    next: {
      ...current,
      state: "terminated",
      exit_status: "job_canceled",
      cancel_requested: true,
      terminated_at: now,
    },
    events: [
      {
        actor: "user",
        kind: "exit_status",
        state: null,
        subState: null,
        exitStatus: "job_canceled",
        message: null,
      },
      {
        actor: "user",
        kind: "state",
        state: "terminated",
        subState: null,
        exitStatus: null,
        message: null,
      },
    ],
    rejected: [],
    changed: true,
    terminatedNow: true,
    restart: false,
  };
}
