/** `tml job cancel|wait`: stop a job, or wait for its outcome and exit with its code. */
import type { Command } from "commander";
import { EXIT_WAIT_TIMEOUT, exitCodeOfJob, ExitRequest } from "../../lib/cli/exit_codes.ts";
import { note, printJson } from "../../lib/cli/output.ts";
import { waitForTermination } from "../../lib/client/job_waiter.ts";
import { formatDuration, parseDuration } from "../../lib/duration.ts";
import { authenticatedClient } from "./session.ts";

export async function cancel(jobId: string, command: Command): Promise<void> {
  const job = await (await authenticatedClient(command)).cancelJob(jobId);
  note(
    job.state === "terminated"
      ? `Job ${job.job_id} is terminated (${job.exit_status})`
      : `Cancel requested for job ${job.job_id} (now ${job.state})`,
  );
  printJson(job);
}

/**
 * Waits until the job terminates, prints its final view as JSON and exits with the code of its
 * outcome (lib/cli/exit_codes.ts), or EXIT_WAIT_TIMEOUT when `--timeout` passes first.
 */
export async function wait(
  jobId: string,
  options: { timeout?: string; followRestarts?: boolean },
  command: Command,
): Promise<never> {
  const timeoutMs = options.timeout === undefined
    ? undefined
    : parseDuration(options.timeout, "--timeout");
  const client = await authenticatedClient(command);
  const { job, timedOut } = await waitForTermination(client, jobId, {
    timeoutMs,
    followRestarts: options.followRestarts,
    onRetry: (error, delay) => note(`tml: ${error.message}; retrying in ${formatDuration(delay)}`),
    onRestart: (from, to) =>
      note(`tml: job ${from.job_id} ended with ${from.exit_status} and was restarted as ${to}`),
  });
  printJson(job);
  if (timedOut) {
    note(`tml: job ${job.job_id} did not terminate within ${options.timeout} (now ${job.state})`);
    throw new ExitRequest(EXIT_WAIT_TIMEOUT);
  }
  throw new ExitRequest(exitCodeOfJob(job) ?? EXIT_WAIT_TIMEOUT);
}
