/**
 * `tml job logs`: prints a job's console (secret values are redacted by the switchboard). With
 * `--follow` it streams until the job has terminated, and after a dropped connection resumes
 * from the bytes already printed.
 */
import type { Command } from "commander";
import { note } from "../../lib/cli/output.ts";
import { ClientError } from "../../lib/client/errors.ts";
import { formatDuration } from "../../lib/duration.ts";
import { TmlError } from "../../lib/errors.ts";
import { authenticatedClient } from "./session.ts";

export async function logs(
  jobId: string,
  options: { follow?: boolean; offset?: string },
  command: Command,
): Promise<void> {
  let offset = options.offset === undefined ? 0 : Number(options.offset);
  if (!Number.isInteger(offset) || offset < 0) {
    throw new TmlError(
      "invalid_input",
      `Cannot read job logs: --offset: expected a whole number of bytes, got "${options.offset}"`,
      { status: 400, field: "offset" },
    );
  }
  const client = await authenticatedClient(command);
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
      // A stream cut mid-body surfaces as a plain error, not a ClientError: also transient.
      const transient = !(error instanceof ClientError) || error.transient;
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
