/**
 * Matches queued jobs to idle supervisors, first in first out by enqueue order. Pure in-memory
 * bookkeeping with no I/O: the coordinator tells it what is queued and who is idle, and asks
 * it for a match when either side changes (enqueue, supervisor idle, connect), so scheduling
 * is driven by events, never by polling. Each event costs one scan of the other side.
 */
import { matchesTags, parseTagFilter, type TagFilter } from "../../lib/tags/mod.ts";
import { grants } from "../../lib/accounts/permissions.ts";

export interface SchedulableJob {
  jobId: string;
  tagConfig: string;
  runPermissions: readonly string[];
}

export interface SchedulableSupervisor {
  supervisorId: string;
  tags: readonly string[];
}

interface QueuedEntry {
  job: SchedulableJob;
  filter: TagFilter;
}

/** Whether a job may run on a supervisor: its owner may use it and its tags satisfy the filter. */
export function canRunOn(
  job: SchedulableJob,
  filter: TagFilter,
  supervisor: SchedulableSupervisor,
): boolean {
  return grants(job.runPermissions, `run_job_on_supervisor:${supervisor.supervisorId}`) &&
    matchesTags(filter, supervisorTags(supervisor));
}

/** A supervisor's tags as jobs see them: its own plus `supervisor:<id>`. */
export function supervisorTags(supervisor: SchedulableSupervisor): string[] {
  return [...supervisor.tags, `supervisor:${supervisor.supervisorId}`];
}

export class Scheduler {
  /** Queued jobs; a Map keeps insertion (= enqueue) order. */
  readonly #queue = new Map<string, QueuedEntry>();
  readonly #idle = new Map<string, SchedulableSupervisor>();

  get queuedCount(): number {
    return this.#queue.size;
  }

  get idleCount(): number {
    return this.#idle.size;
  }

  /**
   * A job entered the queue: returns an idle supervisor that takes it now (and is no longer
   * idle), or keeps the job queued and returns undefined.
   */
  enqueue(job: SchedulableJob): SchedulableSupervisor | undefined {
    const filter = parseTagFilter(job.tagConfig);
    for (const supervisor of this.#idle.values()) {
      if (canRunOn(job, filter, supervisor)) {
        this.#idle.delete(supervisor.supervisorId);
        return supervisor;
      }
    }
    this.#queue.set(job.jobId, { job, filter });
    return undefined;
  }

  /**
   * A supervisor became idle: returns the oldest queued job it can take (no longer queued), or
   * records the supervisor as idle and returns undefined.
   */
  supervisorIdle(supervisor: SchedulableSupervisor): SchedulableJob | undefined {
    for (const entry of this.#queue.values()) {
      if (canRunOn(entry.job, entry.filter, supervisor)) {
        this.#queue.delete(entry.job.jobId);
        return entry.job;
      }
    }
    this.#idle.set(supervisor.supervisorId, supervisor);
    return undefined;
  }

  /** Takes a job out of the queue (canceled, timed out); true if it was queued. */
  dequeue(jobId: string): boolean {
    return this.#queue.delete(jobId);
  }

  /** The supervisor is busy or gone. */
  supervisorUnavailable(supervisorId: string): void {
    this.#idle.delete(supervisorId);
  }

  isIdle(supervisorId: string): boolean {
    return this.#idle.has(supervisorId);
  }
}
