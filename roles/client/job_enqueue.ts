/**
 * `tml job enqueue`: builds the request from flags exactly as CI scripts write them
 * (`--tag-config`, `--parameters JSON`), adds the SSH keys, and prints one JSON object with
 * `job_id` on stdout, whatever the terminal, because scripts parse it with `jq -r .job_id`.
 */
import type { Command } from "commander";
import { configDir, requireToken } from "../../lib/client/credentials.ts";
import { SwitchboardClient } from "../../lib/client/switchboard_client.ts";
import { note, printJson } from "../../lib/cli/output.ts";
import { buildEnqueueRequest, type EnqueueFlags } from "./enqueue_request.ts";
import { clientSettings } from "./session.ts";
import { collectSshKeys } from "./ssh_keys.ts";

export async function enqueue(
  imageId: string,
  flags: EnqueueFlags & { sshKey?: string[] },
  command: Command,
): Promise<void> {
  // Flags first: a bad flag is reported before any file, key or network is touched.
  buildEnqueueRequest(imageId, flags, []);
  const { config, apiUrl } = await clientSettings(command);
  const client = new SwitchboardClient(apiUrl, await requireToken(apiUrl));
  const sshKeys = await collectSshKeys({
    given: flags.sshKey ?? [],
    configured: config.ssh_keys ?? [],
    home: Deno.env.get("HOME") ?? ".",
    tmlKeyDir: `${configDir()}/ssh`,
    warn: note,
  });
  const job = await client.enqueueJob(buildEnqueueRequest(imageId, flags, sshKeys));
  if (job.exit_status === "supervisor_match_error") {
    note(
      `tml: warning: job ${job.job_id} ended at once with supervisor_match_error: ${
        job.exit_message ?? `no supervisor you may use matches "${job.tag_config}"`
      }`,
    );
  }
  printJson(job);
}
