/**
 * The switchboard's job records: enqueue, read, page, history, and `transition`, the one way a
 * job's lifecycle changes. The switchboard is the only writer of job rows, so it keeps every
 * active job in memory and serialises the changes to each job in process; each change is then
 * one SQL statement that updates the row and records its history events together (atomic as a
 * single statement), which is what lets one switchboard carry thousands of lifecycles a second.
 * The restart policy, which also inserts a job, runs as one transaction. After a restart the
 * memory is rebuilt from the database by `load()`.
 */
import type { Database, Queryable } from "../../lib/db/database.ts";
import type { ExecutionState, ExitStatus } from "../../lib/lifecycle.ts";
import type { JobEvent } from "../../lib/protocol/api.ts";
import type { JobParameters } from "../../lib/protocol/common.ts";
import type { JobRow } from "./job_row.ts";
import { KeyedChain } from "./keyed.ts";
import {
  type EventActor,
  type JobChange,
  type PendingEvent,
  planQueuedCancel,
  planTransition,
  planTransitions,
  type TransitionOptions,
  type TransitionPlan,
} from "./job_transition.ts";

export type { EventActor, JobChange, TransitionOptions };

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

const JOB_COLUMNS = `job_id, seq, owner_id, image_id, tag_config, parameters, ssh_keys, workload,
  restart_count, restarted_from, restarted_as, timeout_ms, queue_timeout_ms, run_permissions,
  state, sub_state, exit_status, exit_message, supervisor_id, start_acked, cancel_requested,
  stop_reason, stop_requested_at, enqueued_at, dispatched_at, terminated_at`;

export class JobStore {
  /** Every job that has not terminated, as last written. */
  readonly #active = new Map<string, JobRow>();
  /** Changes to one job run one after another, never interleaved. */
  readonly #chain = new KeyedChain();

  constructor(private readonly db: Database) {}

  /** Reads every active job into memory, oldest first; call once at start. */
  async load(): Promise<JobRow[]> {
    const rows = await this.db.query<JobRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE state <> 'terminated' ORDER BY seq`,
    );
    this.#active.clear();
    for (const row of rows) this.#active.set(row.job_id, row);
    return rows;
  }

  /**
   * Inserts a new queued job. With `matchError` it is terminated at once with
   * `supervisor_match_error` (no supervisor could ever take it).
   */
  async enqueue(job: NewJob, options: { matchError?: string } = {}): Promise<JobRow> {
    const now = new Date();
    if (options.matchError === undefined) {
      const row = await insertJob(this.db, job, null, now);
      this.#active.set(row.job_id, row);
      return row;
    }
    return await this.db.transaction(async (tx) => {
      const row = await insertJob(tx, job, null, now);
      const plan = planTransition(
        row,
        {
          exitStatus: "supervisor_match_error",
          state: "terminated",
          message: options.matchError,
        },
        { actor: "switchboard" },
        now,
      );
      return await writePlan(tx, plan, now);
    });
  }

  async get(jobId: string): Promise<JobRow | undefined> {
    const rows = await this.db.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE job_id = $1`, [
      jobId,
    ]);
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

  /** The in-memory row of an active job (undefined once it terminated). */
  activeJob(jobId: string): JobRow | undefined {
    return this.#active.get(jobId);
  }

  /** Notes in memory that the supervisor acknowledged start_job; written with the next change. */
  noteStartAcked(jobId: string): void {
    const job = this.#active.get(jobId);
    if (job !== undefined) job.start_acked = true;
  }

  /** Applies a change to one job; see the module comment. */
  transition(
    jobId: string,
    change: JobChange,
    options: TransitionOptions,
  ): Promise<TransitionResult | undefined> {
    return this.#chain.run(jobId, async () => {
      const current = this.#active.get(jobId) ?? await this.get(jobId);
      if (current === undefined) return undefined;
      const now = new Date();
      return await this.#apply(planTransition(current, change, options, now), now);
    });
  }

  /**
   * Applies several changes to one job in order as one write (a supervisor's back-to-back
   * reports); says, per change, why it was rejected.
   */
  transitionMany(
    jobId: string,
    changes: readonly JobChange[],
    options: TransitionOptions,
  ): Promise<{ result: TransitionResult; rejectedPerChange: string[][] } | undefined> {
    return this.#chain.run(jobId, async () => {
      const current = this.#active.get(jobId) ?? await this.get(jobId);
      if (current === undefined) return undefined;
      const now = new Date();
      const { plan, rejectedPerChange } = planTransitions(current, changes, options, now);
      return { result: await this.#apply(plan, now), rejectedPerChange };
    });
  }

  /**
   * Cancels a job that is still queued: it terminates at once with `job_canceled`. Returns
   * undefined when the job is not queued any more (the caller then stops it like a dispatched
   * job).
   */
  cancelQueued(jobId: string): Promise<TransitionResult | undefined> {
    return this.#chain.run(jobId, async () => {
      const current = this.#active.get(jobId) ?? await this.get(jobId);
      const now = new Date();
      const plan = current === undefined ? undefined : planQueuedCancel(current, now);
      return plan === undefined ? undefined : await this.#apply(plan, now);
    });
  }

  async #apply(plan: TransitionPlan, now: Date): Promise<TransitionResult> {
    if (!plan.changed) {
      return { job: plan.next, rejected: plan.rejected, changed: false, terminatedNow: false };
    }
    let restart: JobRow | undefined;
    let job: JobRow;
    if (plan.restart) {
      [job, restart] = await this.db.transaction(async (tx) => {
        const retry = await insertJob(tx, copyForRestart(plan.next), plan.next.job_id, now);
        plan.next.restarted_as = retry.job_id;
        return [await writePlan(tx, plan, now), retry];
      });
      this.#active.set(restart.job_id, restart);
    } else {
      job = await writePlan(this.db, plan, now);
    }
    if (job.state === "terminated") this.#active.delete(job.job_id);
    else this.#active.set(job.job_id, job);
    return {
      job,
      rejected: plan.rejected,
      changed: true,
      terminatedNow: plan.terminatedNow,
      restart,
    };
  }
}

function copyForRestart(job: JobRow): NewJob {
  return {
    jobId: crypto.randomUUID(),
    ownerId: job.owner_id,
    imageId: job.image_id,
    tagConfig: job.tag_config,
    parameters: job.parameters,
    sshKeys: job.ssh_keys,
    workload: job.workload,
    restartCount: job.restart_count - 1,
    timeoutMs: job.timeout_ms,
    queueTimeoutMs: job.queue_timeout_ms,
    runPermissions: job.run_permissions,
  };
}

/** Writes a planned row and its events in one statement. */
async function writePlan(db: Queryable, plan: TransitionPlan, now: Date): Promise<JobRow> {
  const next = plan.next;
  const params: unknown[] = [
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
    now,
  ];
  const values = eventValues(plan.events, params);
  const rows = await db.query<JobRow>(
    `WITH updated AS (
       UPDATE jobs SET state = $2, sub_state = $3, exit_status = $4, exit_message = $5,
         supervisor_id = $6, dispatched_at = $7, start_acked = $8, stop_reason = $9,
         stop_requested_at = $10, cancel_requested = $11, terminated_at = $12, restarted_as = $13
       WHERE job_id = $1 RETURNING ${JOB_COLUMNS}
     )${
      values === "" ? "" : `, recorded AS (
       INSERT INTO job_events (job_id, at, actor, kind, state, sub_state, exit_status, message)
       VALUES ${values}
     )`
    }
     SELECT * FROM updated`,
    params,
  );
  return rows[0];
}

/** Inserts a job and its `queued` event in one statement. */
async function insertJob(
  db: Queryable,
  job: NewJob,
  restartedFrom: string | null,
  now: Date,
): Promise<JobRow> {
  const params: unknown[] = [
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
  ];
  const values = eventValues([{
    actor: restartedFrom === null ? "user" : "switchboard",
    kind: "state",
    state: "queued",
    subState: null,
    exitStatus: null,
    message: restartedFrom === null ? null : `restart of job ${restartedFrom}`,
  }], params);
  const rows = await db.query<JobRow>(
    `WITH inserted AS (
       INSERT INTO jobs (job_id, owner_id, image_id, tag_config, parameters, ssh_keys, workload,
         restart_count, restarted_from, timeout_ms, queue_timeout_ms, run_permissions, state,
         enqueued_at)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, 'queued', $13)
       RETURNING ${JOB_COLUMNS}
     ), recorded AS (
       INSERT INTO job_events (job_id, at, actor, kind, state, sub_state, exit_status, message)
       SELECT v.* FROM (VALUES ${values}) AS v(job_id, at, actor, kind, state, sub_state, exit_status, message)
       JOIN inserted ON true
     )
     SELECT * FROM inserted`,
    params,
  );
  return rows[0];
}

/**
 * Appends the events' values to `params` and returns the VALUES tuples. `$1` is the job id
 * and the last parameter already in `params` is the time, in both callers.
 */
function eventValues(events: PendingEvent[], params: unknown[]): string {
  const at = params.length;
  return events.map((event) => {
    const base = params.length;
    params.push(
      event.actor,
      event.kind,
      event.state,
      event.subState,
      event.exitStatus,
      event.message,
    );
    return `($1::uuid, $${at}::timestamptz, $${base + 1}, $${base + 2}, $${base + 3}, $${
      base + 4
    }, $${base + 5}, $${base + 6})`;
  }).join(", ");
}
