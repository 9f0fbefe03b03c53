/**
 * The switchboard's brain: turns events (enqueue, cancel, supervisor hello, job update,
 * disconnect, deadline) into job transitions and supervisor commands. The database is the only
 * state that survives a restart; everything here is rebuilt from it by `start()`.
 *
 * Per job, the switchboard side of the lifecycle:
 *
 *   enqueue ──> queued ──(idle eligible supervisor)──> scheduled ──start_job──> supervisor
 *                 │ queue deadline                         │ run deadline / cancel
 *                 v                                        v
 *     terminated (queue_timeout |            exit status set, stop_job sent; stop grace
 *       supervisor_match_error | canceled)   passes without `terminated` -> terminated
 *
 * A supervisor that disconnects gets `supervisor_grace` to come back; a supervisor that comes
 * back (hello) without a job it had acknowledged dropped it: `supervisor_dropped_job`.
 */
import type { Database } from "../../lib/db/database.ts";
import type { Logger } from "../../lib/log.ts";
import type { ExitStatus } from "../../lib/lifecycle.ts";
import { parseTagFilter, type TagFilter } from "../../lib/tags/mod.ts";
import { authenticateSupervisor, listSupervisorRecords } from "../../lib/accounts/supervisors.ts";
import { PROTOCOL_VERSION, protocolMismatch } from "../../lib/protocol/version.ts";
import type {
  ConsoleOutput,
  JobUpdate,
  StopReason,
  SupervisorHello,
} from "../../lib/protocol/supervisor.ts";
import type { SwitchboardConfig } from "./config.ts";
import { Deadlines } from "./deadlines.ts";
import { type JobRow, toJobSpec } from "./job_row.ts";
import { type JobChange, JobStore, type NewJob, type TransitionResult } from "./job_store.ts";
import { canRunOn, type SchedulableJob, Scheduler } from "./scheduler.ts";
import { type SessionHandlers, SupervisorSession } from "./supervisor_session.ts";
import { ConsoleStore } from "./console_store.ts";
import { KeyedWaiters } from "./keyed.ts";

interface SupervisorState {
  supervisorId: string;
  name: string;
  tags: string[];
  session?: SupervisorSession;
  /** The active job the database assigns to this supervisor, or one being dispatched. */
  jobId: string | null;
  /** Jobs the supervisor says it still holds (it may tear one down after we gave up on it). */
  holding: Set<string>;
}

export type UpdateAnswer = { ok: true } | { ok: false; code: string; message: string };

/** How long the cached list of registered supervisors is trusted before a re-read. */
const REGISTRY_TTL_MS = 1_000;

export class Coordinator implements SessionHandlers {
  readonly store: JobStore;
  readonly console: ConsoleStore;
  readonly #scheduler = new Scheduler();
  readonly #deadlines = new Deadlines();
  readonly #supervisors = new Map<string, SupervisorState>();
  readonly #terminationWaiters = new KeyedWaiters<JobRow>();
  #registryReadAt = 0;

  constructor(
    private readonly db: Database,
    private readonly config: SwitchboardConfig,
    private readonly log: Logger,
  ) {
    this.store = new JobStore(db);
    this.console = new ConsoleStore(db, config.console_max_bytes);
  }

  /** Rebuilds the in-memory view from the database and arms every deadline. */
  async start(): Promise<void> {
    await this.#refreshRegistry(true);
    const now = Date.now();
    for (const job of await this.store.load()) {
      if (job.state === "queued") {
        this.#trackQueued(job);
        continue;
      }
      const supervisor = job.supervisor_id === null
        ? undefined
        : this.#supervisors.get(job.supervisor_id);
      if (supervisor === undefined) {
        await this.#finish(job.job_id, "supervisor_dropped_job", "its supervisor was removed");
        continue;
      }
      supervisor.jobId = job.job_id;
      supervisor.holding.add(job.job_id);
      this.#armRunDeadline(job);
      if (job.stop_requested_at !== null) this.#armStopGrace(job);
      // Nobody is connected right after a start: every supervisor gets its grace to return.
      this.#armSupervisorGrace(supervisor, now);
    }
  }

  stop(): void {
    this.#deadlines.clearAll();
    for (const supervisor of this.#supervisors.values()) {
      supervisor.session?.close(1001, "switchboard shutting down");
    }
  }

  // -------------------------------------------------------------------------------------------
  // Jobs

  /**
   * Enqueues a job. A job that no registered supervisor could ever take ends at once with
   * `supervisor_match_error`.
   */
  async enqueue(job: NewJob): Promise<JobRow> {
    const filter = parseTagFilter(job.tagConfig);
    // The cached registry may predate a supervisor registered a moment ago (by `tml admin`,
    // another process): re-read it before calling a job unmatchable.
    await this.#refreshRegistry(false);
    if (!this.#anyEligible(schedulable(job), filter)) await this.#refreshRegistry(true);
    const matchError = this.#anyEligible(schedulable(job), filter)
      ? undefined
      : `tag filter "${job.tagConfig}" matches no supervisor the owner may use`;
    const row = await this.store.enqueue(job, { matchError });
    if (row.state === "queued") this.#trackQueued(row);
    return row;
  }

  /**
   * Cancels a job for a user: a queued job terminates at once with `job_canceled`; a
   * dispatched one gets the status now and its supervisor is told to stop.
   */
  async cancel(jobId: string): Promise<JobRow | undefined> {
    this.#scheduler.dequeue(jobId);
    const current = await this.store.get(jobId);
    if (current === undefined || current.state === "terminated") return current;
    if (current.state === "queued") {
      const result = await this.store.cancelQueued(jobId);
      if (result !== undefined && result.terminatedNow) {
        this.#jobEnded(result);
        return result.job;
      }
    }
    return await this.#requestStop(jobId, "canceled", "job_canceled", "user");
  }

  /** Resolves with the job once it terminates, or undefined after `timeoutMs`. */
  waitForTermination(jobId: string, timeoutMs: number): Promise<JobRow | undefined> {
    return this.#terminationWaiters.wait(jobId, timeoutMs);
  }

  // -------------------------------------------------------------------------------------------
  // Supervisor connections

  /** Authenticates a websocket upgrade request and starts a session. */
  async acceptConnection(request: Request): Promise<Response> {
    const header = request.headers.get("authorization") ?? "";
    const token = header.startsWith("Bearer ") ? header.slice("Bearer ".length).trim() : "";
    const record = token === "" ? undefined : await authenticateSupervisor(this.db, token);
    if (record === undefined) {
      return Response.json({
        error: { code: "unauthorized", message: "Cannot connect supervisor: invalid token" },
      }, { status: 401 });
    }
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({
        error: {
          code: "upgrade_required",
          message: "Cannot connect supervisor: expected a websocket upgrade",
        },
      }, { status: 426 });
    }
    const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout: 0 });
    this.#stateOf(record.supervisor_id, record.name, record.tags);
    new SupervisorSession(
      socket,
      record.supervisor_id,
      this.config.keepalive_interval,
      this.log.child("session"),
      this,
    );
    return response;
  }

  async onHello(session: SupervisorSession, hello: SupervisorHello): Promise<void> {
    const refusal = protocolMismatch(hello.protocol_version) ??
      (hello.supervisor_id !== session.supervisorId
        ? `Cannot accept supervisor: hello names "${hello.supervisor_id}" but the token belongs to "${session.supervisorId}"`
        : undefined);
    if (refusal !== undefined) {
      this.log.warn("refusing supervisor", {
        supervisor_id: session.supervisorId,
        reason: refusal,
      });
      session.send({ type: "refused", code: "refused", message: refusal });
      session.close(4003, "refused");
      return;
    }
    const supervisor = this.#supervisors.get(session.supervisorId)!;
    if (supervisor.session !== undefined && supervisor.session !== session) {
      const previous = supervisor.session;
      supervisor.session = undefined;
      previous.close(4004, "superseded by a new connection");
    }
    supervisor.session = session;
    this.#deadlines.clear(`grace:${supervisor.supervisorId}`);
    if (hello.tags !== undefined) supervisor.tags = hello.tags;
    await this.db.query(
      `UPDATE supervisors SET tags = $2, last_seen_at = now() WHERE supervisor_id = $1`,
      [supervisor.supervisorId, supervisor.tags],
    );
    session.send({
      type: "welcome",
      protocol_version: PROTOCOL_VERSION,
      supervisor_id: supervisor.supervisorId,
      keepalive_interval_ms: this.config.keepalive_interval,
    });
    session.startKeepalive();
    this.log.info("supervisor connected", {
      supervisor_id: supervisor.supervisorId,
      name: supervisor.name,
      held_jobs: hello.jobs.length,
    });
    await this.#reconcile(supervisor, hello);
  }

  /** Consecutive updates of one job, applied as one write; one answer per update. */
  async onJobUpdates(session: SupervisorSession, updates: JobUpdate[]): Promise<UpdateAnswer[]> {
    const supervisor = this.#supervisors.get(session.supervisorId)!;
    const jobId = updates[0].job_id;
    const last = updates.at(-1)!;
    if (updates.some((update) => update.state === "terminated")) supervisor.holding.delete(jobId);
    const changes: JobChange[] = updates.map((update) => ({
      state: update.state,
      subState: update.sub_state,
      exitStatus: update.exit_status,
      message: update.message,
    }));
    const outcome = await this.store.transitionMany(jobId, changes, {
      actor: "supervisor",
      onlyIfSupervisor: supervisor.supervisorId,
    });
    if (outcome === undefined) {
      const message = `Cannot update job "${jobId}": no such job`;
      return updates.map(() => ({ ok: false, code: "unknown_job", message }));
    }
    const { result, rejectedPerChange } = outcome;
    if (result.terminatedNow) this.#jobEnded(result);
    if (
      last.state !== undefined && last.state !== "terminated" && result.job.state !== "terminated"
    ) {
      supervisor.holding.add(jobId);
    }
    this.#offerWork(supervisor);
    return updates.map((update, index) => {
      const rejected = rejectedPerChange[index];
      // A repeated `terminated` from the job's own supervisor is an idempotent retry.
      const repeatedTermination = update.state === "terminated" &&
        result.job.state === "terminated" && result.job.supervisor_id === supervisor.supervisorId;
      if (rejected.length === 0 || repeatedTermination) return { ok: true };
      this.log.warn("ignored an illegal job update", {
        supervisor_id: supervisor.supervisorId,
        job_id: jobId,
        reason: rejected.join("; "),
      });
      return { ok: false, code: "illegal_transition", message: rejected.join("; ") };
    });
  }

  /** A chunk of a job's console; only the job's own supervisor may send it. */
  async onConsoleOutput(session: SupervisorSession, output: ConsoleOutput): Promise<UpdateAnswer> {
    const job = this.store.activeJob(output.job_id);
    if (job === undefined || job.supervisor_id !== session.supervisorId) {
      return {
        ok: false,
        code: "not_running",
        message:
          `Cannot store console of job "${output.job_id}": it is not running on this supervisor`,
      };
    }
    await this.console.ingest(
      job,
      output.offset,
      Uint8Array.from(atob(output.data), (c) => c.charCodeAt(0)),
    );
    return { ok: true };
  }

  onClose(session: SupervisorSession): void {
    const supervisor = this.#supervisors.get(session.supervisorId);
    if (supervisor === undefined || supervisor.session !== session) return;
    supervisor.session = undefined;
    this.#scheduler.supervisorUnavailable(supervisor.supervisorId);
    this.log.info("supervisor disconnected", { supervisor_id: supervisor.supervisorId });
    if (supervisor.jobId !== null) this.#armSupervisorGrace(supervisor, Date.now());
  }

  /** Connection facts for the supervisor views of the API. */
  supervisorStatus(supervisorId: string): { connected: boolean; currentJobId: string | null } {
    const supervisor = this.#supervisors.get(supervisorId);
    return {
      connected: supervisor?.session !== undefined,
      currentJobId: supervisor?.jobId ?? null,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Internals

  async #reconcile(supervisor: SupervisorState, hello: SupervisorHello): Promise<void> {
    const held = new Map(hello.jobs.map((job) => [job.job_id, job]));
    supervisor.holding = new Set(held.keys());
    const assigned = await this.db.query<{ job_id: string }>(
      `SELECT job_id FROM jobs WHERE supervisor_id = $1 AND state <> 'terminated' ORDER BY seq`,
      [supervisor.supervisorId],
    );
    const active = new Set<string>();
    for (const { job_id: jobId } of assigned) {
      const job = await this.store.get(jobId);
      if (job === undefined || job.state === "terminated") continue;
      const report = held.get(jobId);
      if (report !== undefined) {
        active.add(jobId);
        const result = await this.store.transition(jobId, {
          state: report.state,
          subState: report.sub_state,
        }, { actor: "supervisor", onlyIfSupervisor: supervisor.supervisorId });
        if (result?.terminatedNow) this.#jobEnded(result);
        else if (job.stop_reason !== null) {
          this.#sendStop(supervisor, jobId, job.stop_reason as StopReason);
        }
      } else if (!job.start_acked && job.state === "scheduled") {
        // start_job may never have arrived: send it again rather than call the job dropped.
        active.add(jobId);
        supervisor.jobId = jobId;
        void this.#sendStart(supervisor, job);
      } else {
        await this.#finish(
          jobId,
          "supervisor_dropped_job",
          "the supervisor reconnected without the job",
        );
      }
    }
    for (const jobId of held.keys()) {
      if (!active.has(jobId)) this.#sendStop(supervisor, jobId, "superseded");
    }
    supervisor.jobId = [...active][0] ?? null;
    this.#offerWork(supervisor);
  }

  #offerWork(supervisor: SupervisorState): void {
    if (
      supervisor.session === undefined || supervisor.jobId !== null || supervisor.holding.size > 0
    ) {
      this.#scheduler.supervisorUnavailable(supervisor.supervisorId);
      return;
    }
    if (this.#scheduler.isIdle(supervisor.supervisorId)) return;
    const job = this.#scheduler.supervisorIdle(supervisor);
    if (job !== undefined) void this.#dispatch(job, supervisor);
  }

  #trackQueued(job: JobRow): void {
    const deadline = job.enqueued_at.getTime() + job.queue_timeout_ms;
    this.#deadlines.set(`queue:${job.job_id}`, deadline, () => void this.#queueTimedOut(job));
    const target = this.#scheduler.enqueue(schedulableRow(job));
    if (target !== undefined) {
      void this.#dispatch(schedulableRow(job), this.#supervisors.get(target.supervisorId)!);
    }
  }

  async #dispatch(job: SchedulableJob, supervisor: SupervisorState): Promise<void> {
    supervisor.jobId = job.jobId; // Reserved: no second job goes to this supervisor meanwhile.
    try {
      const result = await this.store.transition(job.jobId, { state: "scheduled" }, {
        actor: "switchboard",
        assignSupervisor: supervisor.supervisorId,
      });
      if (
        result === undefined || result.job.supervisor_id !== supervisor.supervisorId ||
        result.job.state !== "scheduled"
      ) {
        supervisor.jobId = null;
        this.#offerWork(supervisor);
        return;
      }
      this.#deadlines.clear(`queue:${job.jobId}`);
      this.#armRunDeadline(result.job);
      this.log.info("job dispatched", {
        job_id: job.jobId,
        supervisor_id: supervisor.supervisorId,
      });
      await this.#sendStart(supervisor, result.job);
    } catch (error) {
      this.log.error("dispatch failed", {
        job_id: job.jobId,
        error: error instanceof Error ? error.message : String(error),
      });
      supervisor.jobId = null;
      await this.#finish(
        job.jobId,
        "internal_supervisor_error",
        "the switchboard failed to dispatch the job",
      )
        .catch(() => {});
      this.#offerWork(supervisor);
    }
  }

  async #sendStart(supervisor: SupervisorState, job: JobRow): Promise<void> {
    const ack = await supervisor.session?.command({ type: "start_job", job: toJobSpec(job) });
    if (ack === undefined) return; // Disconnected: the next hello resends it.
    if (ack.ok) {
      supervisor.holding.add(job.job_id);
      this.store.noteStartAcked(job.job_id);
      return;
    }
    await this.#finish(
      job.job_id,
      "internal_supervisor_error",
      `the supervisor refused the job: ${ack.error?.message ?? "no reason given"}`,
    );
  }

  #sendStop(supervisor: SupervisorState, jobId: string, reason: StopReason): void {
    void supervisor.session?.command({ type: "stop_job", job_id: jobId, reason });
  }

  async #requestStop(
    jobId: string,
    reason: StopReason,
    status: ExitStatus,
    actor: "user" | "switchboard",
  ): Promise<JobRow | undefined> {
    const result = await this.store.transition(jobId, { exitStatus: status }, {
      actor,
      stop: { reason },
    });
    if (result === undefined) return undefined;
    if (result.job.state === "terminated") return result.job;
    this.#armStopGrace(result.job);
    const supervisor = result.job.supervisor_id === null
      ? undefined
      : this.#supervisors.get(result.job.supervisor_id);
    if (supervisor !== undefined) this.#sendStop(supervisor, jobId, reason);
    return result.job;
  }

  /** Ends a job from the switchboard's side with a final status, then frees its supervisor. */
  async #finish(jobId: string, status: ExitStatus, message: string): Promise<void> {
    const result = await this.store.transition(jobId, {
      exitStatus: status,
      state: "terminated",
      message,
    }, { actor: "switchboard" });
    if (result?.terminatedNow) this.#jobEnded(result);
  }

  /** Bookkeeping after any job reaches `terminated`. */
  #jobEnded(result: TransitionResult): void {
    const job = result.job;
    void this.console.finish(job).finally(() => this.#terminationWaiters.wake(job.job_id, job));
    this.#scheduler.dequeue(job.job_id);
    for (const kind of ["queue", "run", "stop"]) this.#deadlines.clear(`${kind}:${job.job_id}`);
    this.log.info("job terminated", {
      job_id: job.job_id,
      exit_status: job.exit_status,
      restarted_as: result.restart?.job_id,
    });
    const supervisor = job.supervisor_id === null
      ? undefined
      : this.#supervisors.get(job.supervisor_id);
    if (supervisor !== undefined && supervisor.jobId === job.job_id) {
      supervisor.jobId = null;
      if (supervisor.session === undefined) {
        this.#deadlines.clear(`grace:${supervisor.supervisorId}`);
      }
      this.#offerWork(supervisor);
    }
    if (result.restart !== undefined) this.#trackQueued(result.restart);
  }

  async #queueTimedOut(job: JobRow): Promise<void> {
    if (!this.#scheduler.dequeue(job.job_id)) return; // Already dispatched or ended.
    const eligible = this.#anyEligible(schedulableRow(job), parseTagFilter(job.tag_config));
    await this.#finish(
      job.job_id,
      eligible ? "queue_timeout" : "supervisor_match_error",
      eligible
        ? `no eligible supervisor took the job within ${job.queue_timeout_ms} ms`
        : `tag filter "${job.tag_config}" matches no supervisor the owner may use`,
    );
  }

  #armRunDeadline(job: JobRow): void {
    if (job.dispatched_at === null || job.stop_reason !== null) return;
    const deadline = job.dispatched_at.getTime() + job.timeout_ms;
    this.#deadlines.set(`run:${job.job_id}`, deadline, () => {
      void this.#requestStop(job.job_id, "timeout", "job_timeout", "switchboard");
    });
  }

  #armStopGrace(job: JobRow): void {
    const since = job.stop_requested_at?.getTime() ?? Date.now();
    this.#deadlines.set(`stop:${job.job_id}`, since + this.config.stop_grace, () => {
      void this.#forceTerminate(job.job_id);
    });
  }

  async #forceTerminate(jobId: string): Promise<void> {
    const result = await this.store.transition(jobId, {
      state: "terminated",
      message: "the supervisor did not confirm the stop in time",
    }, { actor: "switchboard" });
    if (result?.terminatedNow) this.#jobEnded(result);
  }

  #armSupervisorGrace(supervisor: SupervisorState, since: number): void {
    this.#deadlines.set(
      `grace:${supervisor.supervisorId}`,
      since + this.config.supervisor_grace,
      () => {
        const jobId = supervisor.jobId;
        if (supervisor.session !== undefined || jobId === null) return;
        void this.#finish(
          jobId,
          "supervisor_dropped_job",
          "the supervisor stayed away past its grace period",
        );
      },
    );
  }

  #anyEligible(job: SchedulableJob, filter: TagFilter): boolean {
    for (const supervisor of this.#supervisors.values()) {
      if (canRunOn(job, filter, supervisor)) return true;
    }
    return false;
  }

  async #refreshRegistry(force: boolean): Promise<void> {
    if (!force && Date.now() - this.#registryReadAt < REGISTRY_TTL_MS) return;
    this.#registryReadAt = Date.now();
    const records = await listSupervisorRecords(this.db);
    const present = new Set<string>();
    for (const record of records) {
      present.add(record.supervisor_id);
      this.#stateOf(record.supervisor_id, record.name, record.tags);
    }
    for (const [id, supervisor] of this.#supervisors) {
      if (!present.has(id) && supervisor.session === undefined && supervisor.jobId === null) {
        this.#supervisors.delete(id);
        this.#scheduler.supervisorUnavailable(id);
      }
    }
  }

  #stateOf(supervisorId: string, name: string, tags: string[]): SupervisorState {
    let supervisor = this.#supervisors.get(supervisorId);
    if (supervisor === undefined) {
      supervisor = { supervisorId, name, tags, jobId: null, holding: new Set() };
      this.#supervisors.set(supervisorId, supervisor);
    } else if (supervisor.session === undefined) {
      supervisor.name = name;
      supervisor.tags = tags;
    }
    return supervisor;
  }
}

function schedulable(job: NewJob): SchedulableJob {
  return { jobId: job.jobId, tagConfig: job.tagConfig, runPermissions: job.runPermissions };
}

function schedulableRow(job: JobRow): SchedulableJob {
  return { jobId: job.job_id, tagConfig: job.tag_config, runPermissions: job.run_permissions };
}
