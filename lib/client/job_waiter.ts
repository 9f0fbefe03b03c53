/**
 * Waits until a job is terminated, on the switchboard's long-poll route, riding out dropped
 * connections, gateway errors and switchboard restarts with exponential backoff. A job that
 * the restart policy re-enqueued (`restarted_as`) is followed to its successor, so the outcome
 * is that of the last attempt. Time is injectable so tests run in milliseconds.
 */
import type { JobView } from "../protocol/api.ts";
import { ClientError } from "./errors.ts";
import type { SwitchboardClient } from "./switchboard_client.ts";

export interface WaitOptions {
  /** Give up after this long; default never. */
  timeoutMs?: number;
  /** Follow `restarted_as` to the job that replaced a restarted one; default true. */
  followRestarts?: boolean;
  /** Longest single long poll; the switchboard caps it at two minutes. */
  pollMs?: number;
  /** First retry delay, doubled per failure up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Told about each failure that will be retried, e.g. to print a note. */
  onRetry?: (error: ClientError, delayMs: number) => void;
  /** Told when the waiter moves on to a restarted job's successor. */
  onRestart?: (from: JobView, to: string) => void;
}

export interface WaitResult {
  /** The last view: terminated, unless `timedOut`. */
  job: JobView;
  timedOut: boolean;
}

export async function waitForTermination(
  client: SwitchboardClient,
  jobId: string,
  options: WaitOptions = {},
): Promise<WaitResult> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const deadline = now() + (options.timeoutMs ?? Infinity);
  const pollMs = options.pollMs ?? 60_000;
  const firstBackoff = options.backoffMs ?? 500;
  const maxBackoff = options.maxBackoffMs ?? 10_000;
  let backoff = firstBackoff;
  let current = jobId;
  let last: JobView | undefined;
  while (true) {
    const remaining = deadline - now();
    if (remaining <= 0) {
      return { job: last ?? await client.getJob(current), timedOut: true };
    }
    let job: JobView;
    try {
      job = await client.waitForJob(current, Math.min(remaining, pollMs));
    } catch (error) {
      if (!(error instanceof ClientError) || !error.transient) throw error;
      const delay = Math.min(backoff, Math.max(0, deadline - now()));
      options.onRetry?.(error, delay);
      await sleep(delay);
      backoff = Math.min(backoff * 2, maxBackoff);
      continue;
    }
    backoff = firstBackoff;
    last = job;
    if (job.state !== "terminated") continue;
    if (job.restarted_as !== null && options.followRestarts !== false) {
      options.onRestart?.(job, job.restarted_as);
      current = job.restarted_as;
      last = undefined;
      continue;
    }
    return { job, timedOut: false };
  }
}
