/**
 * The switchboard's job records: enqueue, read, page, history, and `transition`, the one
 * function that changes a job's lifecycle. Every change runs in a transaction that locks the
 * job row, applies the rules of `lib/lifecycle.ts` for the given actor, writes the row and one
 * history event per change, and applies the restart policy when a job ends in an
 * infrastructure failure. A rejected change leaves the database untouched and says why.
 */
import type { Database, Queryable } from "../../lib/db/database.ts";
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
import type { JobParameters } from "../../lib/protocol/common.ts";
import type { StopReason } from "../../lib/protocol/supervisor.ts";
import type { JobRow } from "./job_row.ts";

export type EventActor = JobEvent["actor"];

export interface NewJob {
  jobId: string;
  ownerId: string;
  imageId: string;
  tagConfig: string;
  parameters: JobParameters;
  sshKeys: string[];
  workload: string | null;
  restartCount: number;
  timeoutMs: number;
  queueTimeoutMs: number;
  runPermissions: string[];
}

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

export interface TransitionResult {
  job: JobRow;
  /** Why parts of the change were ignored; empty when all of it applied. */
  rejected: string[];
  changed: boolean;
  /** The job reached `terminated` in this transition. */
  terminatedNow: boolean;
  /** The job enqueued by the restart policy, if any. */
  restart?: JobRow;
}

interface PendingEvent {
  actor: EventActor;
  kind: "state" | "exit_status";
  state: ExecutionState | null;
  subState: string | null;
  exitStatus: ExitStatus | null;
  message: string | null;
}

const JOB_COLUMNS = `job_id, seq, owner_id, image_id, tag_config, parameters, ssh_keys, workload,
  restart_count, restarted_from, restarted_as, timeout_ms, queue_timeout_ms, run_permissions,
  state, sub_state, exit_status, exit_message, supervisor_id, start_acked, cancel_requested,
  stop_reason, stop_requested_at, enqueued_at, dispatched_at, terminated_at`;

export class JobStore {
  constructor(private readonly db: Database) {}

  /**
   * Inserts a new queued job. With `matchError` it is terminated at once with
   * `supervisor_match_error` in the same transaction (no supervisor could ever take it).
   */
  async enqueue(job: NewJob, options: { matchError?: string } = {}): Promise<JobRow> {
    return await this.db.transaction(async (tx) => {
      let row = await insertJob(tx, job, null, new Date());
      if (options.matchError !== undefined) {
        row = (await transitionLocked(tx, row, {
          exitStatus: "supervisor_match_error",
          state: "terminated",
          message: options.matchError,
        }, { actor: "switchboard" })).job;
      }
      return row;
    });
  }

  async get(jobId: string): Promise<JobRow | undefined> {
    const rows = await this.db.query<JobRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE job_id = $1`,
      [jobId],
    );
    return rows[0];
  }

  /** Jobs in enqueue order (newest first), optionally one owner's or one state's. */
  async list(filter: {
    ownerId?: string;
    state?: ExecutionState | "active";
    beforeSeq?: number;
    limit: number;
  }): Promise<JobRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.ownerId !== undefined) {
      params.push(filter.ownerId);
      where.push(`owner_id = $${params.length}`);
    }
    if (filter.state === "active") {
      where.push(`state <> 'terminated'`);
    } else if (filter.state !== undefined) {
      params.push(filter.state);
      where.push(`state = $${params.length}`);
    }
    if (filter.beforeSeq !== undefined) {
      params.push(filter.beforeSeq);
      where.push(`seq < $${params.length}`);
    }
    params.push(filter.limit);
    return await this.db.query<JobRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
       ORDER BY seq DESC LIMIT $${params.length}`,
      params,
    );
  }

  /** Every job that has not terminated, oldest first: the switchboard's working set. */
  async active(): Promise<JobRow[]> {
    return await this.db.query<JobRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE state <> 'terminated' ORDER BY seq`,
    );
  }

  async history(jobId: string): Promise<JobEvent[]> {
    const rows = await this.db.query<{
      at: Date;
      actor: EventActor;
      kind: "state" | "exit_status";
      state: ExecutionState | null;
      sub_state: string | null;
      exit_status: ExitStatus | null;
      message: string | null;
    }>(
      `SELECT at, actor, kind, state, sub_state, exit_status, message
       FROM job_events WHERE job_id = $1 ORDER BY event_id`,
      [jobId],
    );
    return rows.map((row) => ({ ...row, at: row.at.toISOString() }));
  }

  async markStartAcked(jobId: string): Promise<void> {
    await this.db.query(`UPDATE jobs SET start_acked = true WHERE job_id = $1`, [jobId]);
  }

  /**
   * Cancels a job that is still queued: it terminates at once with `job_canceled`. The
   * lifecycle spec makes this the one case where that status is set outside the
   * status-in-state table (the job never reached a supervisor). Returns undefined when the job
   * is not queued any more (the caller then stops it like a dispatched job).
   */
  async cancelQueued(jobId: string): Promise<TransitionResult | undefined> {
    return await this.db.transaction(async (tx) => {
      const rows = await tx.query<JobRow>(
        `SELECT ${JOB_COLUMNS} FROM jobs WHERE job_id = $1 FOR UPDATE`,
        [jobId],
      );
      const current = rows[0];
      if (current === undefined || current.state !== "queued") return undefined;
      const now = new Date();
      const updated = await tx.query<JobRow>(
        `UPDATE jobs SET state = 'terminated', exit_status = 'job_canceled', cancel_requested = true,
           terminated_at = $2 WHERE job_id = $1 RETURNING ${JOB_COLUMNS}`,
        [jobId, now],
      );
      await insertEvents(tx, jobId, [
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
      ], now);
      return { job: updated[0], rejected: [], changed: true, terminatedNow: true };
    });
  }

  /** Applies a change to one job atomically; see the module comment. */
  async transition(
    jobId: string,
    change: JobChange,
    options: TransitionOptions,
  ): Promise<TransitionResult | undefined> {
    return await this.db.transaction(async (tx) => {
      const rows = await tx.query<JobRow>(
        `SELECT ${JOB_COLUMNS} FROM jobs WHERE job_id = $1 FOR UPDATE`,
        [jobId],
      );
      if (rows[0] === undefined) return undefined;
      return await transitionLocked(tx, rows[0], change, options);
    });
  }
}

async function transitionLocked(
  tx: Queryable,
  current: JobRow,
  change: JobChange,
  options: TransitionOptions,
): Promise<TransitionResult> {
  const rejected: string[] = [];
  if (
    options.onlyIfSupervisor !== undefined && current.supervisor_id !== options.onlyIfSupervisor
  ) {
    rejected.push(`Cannot update job "${current.job_id}": it is not assigned to this supervisor`);
    return { job: current, rejected, changed: false, terminatedNow: false };
  }
  const lifecycleActor: Actor = options.actor === "supervisor" ? "supervisor" : "switchboard";
  const now = new Date();
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

  if (options.assignSupervisor !== undefined && next.state === "scheduled") {
    next.supervisor_id = options.assignSupervisor;
    next.dispatched_at = now;
    next.start_acked = false;
  }
  if (options.stop !== undefined && next.state !== "terminated") {
    next.stop_reason = options.stop.reason;
    next.stop_requested_at = now;
    next.cancel_requested = next.cancel_requested || options.stop.reason === "canceled";
  }

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

  const changed = events.length > 0 || options.assignSupervisor !== undefined ||
    options.stop !== undefined;
  if (!changed) return { job: current, rejected, changed: false, terminatedNow: false };

  let restart: JobRow | undefined;
  if (
    terminatedNow && next.exit_status !== null && isInfrastructureFailure(next.exit_status) &&
    next.restart_count > 0
  ) {
    restart = await insertJob(
      tx,
      {
        jobId: crypto.randomUUID(),
        ownerId: next.owner_id,
        imageId: next.image_id,
        tagConfig: next.tag_config,
        parameters: next.parameters,
        sshKeys: next.ssh_keys,
        workload: next.workload,
        restartCount: next.restart_count - 1,
        timeoutMs: next.timeout_ms,
        queueTimeoutMs: next.queue_timeout_ms,
        runPermissions: next.run_permissions,
      },
      next.job_id,
      now,
    );
    next.restarted_as = restart.job_id;
  }

  const updated = await tx.query<JobRow>(
    `UPDATE jobs SET state = $2, sub_state = $3, exit_status = $4, exit_message = $5,
       supervisor_id = $6, dispatched_at = $7, start_acked = $8, stop_reason = $9,
       stop_requested_at = $10, cancel_requested = $11, terminated_at = $12, restarted_as = $13
     WHERE job_id = $1 RETURNING ${JOB_COLUMNS}`,
    [
      next.job_id,
      next.state,
      next.sub_state,
      next.exit_status,
      next.exit_message,
      next.supervisor_id,
      next.dispatched_at,
      next.start_acked,
      next.stop_reason,
      next.stop_requested_at,
      next.cancel_requested,
      next.terminated_at,
      next.restarted_as,
    ],
  );
  await insertEvents(tx, next.job_id, events, now);
  return { job: updated[0], rejected, changed: true, terminatedNow, restart };
}

async function insertJob(
  tx: Queryable,
  job: NewJob,
  restartedFrom: string | null,
  now: Date,
): Promise<JobRow> {
  const rows = await tx.query<JobRow>(
    `INSERT INTO jobs (job_id, owner_id, image_id, tag_config, parameters, ssh_keys, workload,
       restart_count, restarted_from, timeout_ms, queue_timeout_ms, run_permissions, state,
       enqueued_at)
     VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, 'queued', $13)
     RETURNING ${JOB_COLUMNS}`,
    [
      job.jobId,
      job.ownerId,
      job.imageId,
      job.tagConfig,
      JSON.stringify(job.parameters),
      job.sshKeys,
      job.workload,
      job.restartCount,
      restartedFrom,
      job.timeoutMs,
      job.queueTimeoutMs,
      job.runPermissions,
      now,
    ],
  );
  await insertEvents(tx, job.jobId, [{
    actor: restartedFrom === null ? "user" : "switchboard",
    kind: "state",
    state: "queued",
    subState: null,
    exitStatus: null,
    message: restartedFrom === null ? null : `restart of job ${restartedFrom}`,
  }], now);
  return rows[0];
}

async function insertEvents(
  tx: Queryable,
  jobId: string,
  events: PendingEvent[],
  now: Date,
): Promise<void> {
  if (events.length === 0) return;
  const params: unknown[] = [jobId, now];
  const tuples = events.map((event) => {
    const base = params.length;
    params.push(
      event.actor,
      event.kind,
      event.state,
      event.subState,
      event.exitStatus,
      event.message,
    );
    return `($1, $2, $${base + 1}, $${base + 2}, $${base + 3}, $${base + 4}, $${base + 5}, $${
      base + 6
    })`;
  });
  await tx.query(
    `INSERT INTO job_events (job_id, at, actor, kind, state, sub_state, exit_status, message)
     VALUES ${tuples.join(", ")}`,
    params,
  );
}
