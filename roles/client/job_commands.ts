/** `tml job show|list|history|cancel|wait`: reading and controlling jobs through the API. */
import type { Command } from "commander";
import { EXIT_CODE_OF_STATUS, EXIT_WAIT_TIMEOUT } from "../../lib/cli/exit_codes.ts";
import { note, type OutputOptions, printJson, printResult } from "../../lib/cli/output.ts";
import { ClientError } from "../../lib/client/errors.ts";
import { formatDuration, parseDuration } from "../../lib/duration.ts";
import type { JobView } from "../../lib/protocol/api.ts";
import { authenticatedClient } from "./session.ts";

function jobRow(job: JobView): Array<string | null> {
  return [
    job.job_id,
    job.state,
    job.sub_state,
    job.exit_status,
    job.tag_config || "(any)",
    job.enqueued_at,
  ];
}
const JOB_HEAD = ["job", "state", "sub-state", "exit status", "tags", "enqueued"];

export async function show(jobId: string, options: OutputOptions, command: Command): Promise<void> {
  const job = await (await authenticatedClient(command)).getJob(jobId);
  printResult(options, job, {
    head: ["field", "value"],
    rows: Object.entries(job).map((
      [key, value],
    ) => [key, typeof value === "object" ? JSON.stringify(value) : String(value)]),
  });
}

export async function list(
  options: OutputOptions & { state?: string; limit?: string; all?: boolean },
  command: Command,
): Promise<void> {
  const client = await authenticatedClient(command);
  const limit = options.limit === undefined ? 50 : Number(options.limit);
  const jobs: JobView[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listJobs({
      state: options.state,
      limit: Math.min(limit, 500),
      cursor,
    });
    jobs.push(...page.jobs);
    cursor = page.next_cursor ?? undefined;
  } while (options.all === true && cursor !== undefined);
  printResult(options, { jobs }, { head: JOB_HEAD, rows: jobs.map(jobRow) });
}

export async function history(
  jobId: string,
  options: OutputOptions,
  command: Command,
): Promise<void> {
  const result = await (await authenticatedClient(command)).jobHistory(jobId);
  const rows = result.events.map((event, index) => {
    const next = result.events[index + 1];
    const lasted = next === undefined
      ? null
      : formatDuration(Date.parse(next.at) - Date.parse(event.at));
    const what = event.kind === "state"
      ? `${event.state}${event.sub_state === null ? "" : ` (${event.sub_state})`}`
      : `exit status ${event.exit_status}`;
    return [event.at, event.actor, what, event.message, lasted];
  });
  printResult(options, result, { head: ["at", "actor", "change", "message", "until next"], rows });
}

export async function cancel(jobId: string, command: Command): Promise<void> {
  printJson(await (await authenticatedClient(command)).cancelJob(jobId));
}

/**
 * Waits until the job terminates, riding out dropped connections and switchboard restarts,
 * prints the final view and exits with the code of its status (see lib/cli/exit_codes.ts).
 */
export async function wait(
  jobId: string,
  options: { timeout?: string },
  command: Command,
): Promise<never> {
  const client = await authenticatedClient(command);
  const deadline = options.timeout === undefined
    ? Infinity
    : Date.now() + parseDuration(options.timeout, "--timeout");
  let backoff = 500;
  while (true) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      printJson(await client.getJob(jobId));
      note(`tml: job ${jobId} did not terminate within ${options.timeout}`);
      Deno.exit(EXIT_WAIT_TIMEOUT);
    }
    try {
      const job = await client.waitForJob(jobId, Math.min(remaining, 60_000));
      backoff = 500;
      if (job.state === "terminated" && job.exit_status !== null) {
        printJson(job);
        Deno.exit(EXIT_CODE_OF_STATUS[job.exit_status]);
      }
    } catch (error) {
      const transient = error instanceof ClientError && (error.status === 0 || error.status >= 500);
      if (!transient) throw error;
      note(`tml: ${error.message}; retrying in ${formatDuration(backoff)}`);
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff = Math.min(backoff * 2, 10_000);
    }
  }
}

/**
 * Prints a job's console. With `--follow` it streams until the job has terminated, and after a
 * dropped connection resumes from the bytes already printed.
 */
export async function logs(
  jobId: string,
  options: { follow?: boolean; offset?: string },
  command: Command,
): Promise<void> {
  const client = await authenticatedClient(command);
  let offset = options.offset === undefined ? 0 : Number(options.offset);
  let backoff = 500;
  while (true) {
    try {
      const response = await client.openJobLogs(jobId, offset, options.follow === true);
      for await (const chunk of response.body ?? []) {
        await Deno.stdout.write(chunk);
        offset += chunk.length;
        backoff = 500;
      }
      if (options.follow !== true) return;
      const job = await client.getJob(jobId);
      if (job.state === "terminated") return;
    } catch (error) {
      const transient = !(error instanceof ClientError) || error.status === 0 ||
        error.status >= 500;
      if (!transient || options.follow !== true) throw error;
      note(
        `tml: ${(error as Error).message}; resuming at byte ${offset} in ${
          formatDuration(backoff)
        }`,
      );
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff = Math.min(backoff * 2, 10_000);
    }
  }
}
