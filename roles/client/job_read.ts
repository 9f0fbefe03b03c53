/** `tml job show|list|history`: jobs as tables for people and JSON for machines. */
import type { Command } from "commander";
import {
  fieldTable,
  type OutputOptions,
  printResult,
  type TableData,
} from "../../lib/cli/output.ts";
import { formatDuration } from "../../lib/duration.ts";
import { ExecutionState } from "../../lib/lifecycle.ts";
import { TmlError } from "../../lib/errors.ts";
import { type JobHistory, type JobView, ListJobsQuery } from "../../lib/protocol/api.ts";
import { authenticatedClient } from "./session.ts";

export async function show(jobId: string, options: OutputOptions, command: Command): Promise<void> {
  const job = await (await authenticatedClient(command)).getJob(jobId);
  printResult(options, job, fieldTable(job));
}

/** The switchboard's largest page. */
const MAX_PAGE = 500;

export async function list(
  options: OutputOptions & { state?: string; limit?: string; all?: boolean },
  command: Command,
): Promise<void> {
  const state = ListJobsQuery.shape.state.safeParse(options.state);
  if (!state.success) {
    throw listInputError("--state", `expected one of ${STATES}, got "${options.state}"`);
  }
  const limit = options.limit === undefined ? 50 : Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1) {
    throw listInputError("--limit", `expected a whole number >= 1, got "${options.limit}"`);
  }
  // Without --all, --limit is how many jobs to show; with it, the page size.
  const wanted = options.all === true ? Infinity : limit;
  const pageSize = Math.min(limit, MAX_PAGE);
  const client = await authenticatedClient(command);
  const jobs: JobView[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listJobs({
      state: state.data,
      limit: Math.min(pageSize, wanted - jobs.length),
      cursor,
    });
    jobs.push(...page.jobs);
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined && jobs.length < wanted);
  printResult(options, { jobs, next_cursor: cursor ?? null }, jobTable(jobs));
}

const STATES = [...ExecutionState.options, "active"].join(", ");

function listInputError(flag: string, detail: string): TmlError {
  return new TmlError("invalid_input", `Cannot list jobs: ${flag}: ${detail}`, {
    status: 400,
    field: flag.slice(2),
  });
}

export function jobTable(jobs: JobView[]): TableData {
  return {
    head: ["job", "state", "exit status", "tags", "enqueued", "ran for"],
    rows: jobs.map((job) => [
      job.job_id,
      job.sub_state === null ? job.state : `${job.state} (${job.sub_state})`,
      job.exit_status,
      job.tag_config === "" ? "(any)" : job.tag_config,
      job.enqueued_at,
      job.dispatched_at === null || job.terminated_at === null
        ? null
        : formatDuration(Date.parse(job.terminated_at) - Date.parse(job.dispatched_at)),
    ]),
  };
}

export async function history(
  jobId: string,
  options: OutputOptions,
  command: Command,
): Promise<void> {
  const result = await (await authenticatedClient(command)).jobHistory(jobId);
  printResult(options, result, historyTable(result, Date.now()));
}

/**
 * One row per event, with the time since enqueue and how long the phase it began lasted (until
 * the next event; for the last event of a job still running, until `now`).
 */
export function historyTable(history: JobHistory, now: number): TableData {
  const events = history.events;
  const start = events.length === 0 ? 0 : Date.parse(events[0].at);
  const terminated = events.some((event) => event.state === "terminated");
  return {
    head: ["at", "elapsed", "actor", "change", "lasted", "message"],
    rows: events.map((event, index) => {
      const at = Date.parse(event.at);
      const next = events[index + 1];
      const lasted = next !== undefined
        ? formatDuration(Date.parse(next.at) - at)
        : terminated
        ? null
        : `${formatDuration(now - at)} so far`;
      const change = event.kind === "state"
        ? `${event.state}${event.sub_state === null ? "" : ` (${event.sub_state})`}`
        : `exit status ${event.exit_status}`;
      return [event.at, formatDuration(at - start), event.actor, change, lasted, event.message];
    }),
  };
}
