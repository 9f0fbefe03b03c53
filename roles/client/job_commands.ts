/** Declares `tml job enqueue|show|list|history|logs|cancel|wait`. */
import type { Command } from "commander";
import { exitCodeTableText } from "../../lib/cli/exit_codes.ts";
import { collect, JSON_HELP } from "./flags.ts";

const readCode = () => import("./job_read.ts");
const controlCode = () => import("./job_control.ts");

const JOB_ID = "the job's id (printed by tml job enqueue as job_id)";

/** Declares the `tml job` commands; returns `tml job` for other families to add theirs. */
export function registerJobCommands(program: Command): Command {
  const job = program.command("job").description("enqueue, inspect and control jobs");

  job.command("enqueue")
    .description("enqueue a job; prints one JSON object with job_id on stdout")
    .argument("<image-id>", "the image to boot: 64 hex digits")
    .option("--tag-config <expr>", 'which supervisors may run it, e.g. "board:nrf52840dk"')
    .option(
      "--parameters <json>",
      'parameters as JSON: {"NAME": {"value": "...", "secret": true}}',
    )
    .option("--parameter <name=value>", "a parameter (repeatable)", collect)
    .option("--secret-parameter <name=value>", "a secret parameter (repeatable)", collect)
    .option(
      "--ssh-key <key>",
      "an SSH public key for the job (repeatable; default: ssh_keys from the config or " +
        "TML_SSH_KEYS, else ~/.ssh/*.pub)",
      collect,
    )
    .option("--restart-count <n>", "re-enqueue up to N times after an infrastructure failure")
    .option("--timeout <duration>", "maximum run time, e.g. 30m, 1.5h; a bare number is seconds")
    .option("--queue-timeout <duration>", "maximum time in the queue, e.g. 2h")
    .option("--workload <command>", "a shell command the host runs; its exit code is the result")
    .addHelpText(
      "after",
      `
Authenticates with TML_API_TOKEN, else the token stored by "tml login". tml also adds a key of
its own (~/.config/tml/ssh/id_ed25519, made on first use) so that ssh into the job just works.

Examples:
  JOB=$(tml job enqueue "$IMAGE_ID" --tag-config "board:$DUT_BOARD" --parameters "$TML_JOB_PARAMETERS" | jq -r .job_id)
  tml job enqueue "$IMAGE_ID" --tag-config 'board:nrf52* & !lab:b' --workload 'make test' --timeout 30m
  tml job enqueue "$IMAGE_ID" --secret-parameter token="$TOKEN" --restart-count 2`,
    )
    .action(async (imageId, options, command) =>
      await (await import("./job_enqueue.ts")).enqueue(imageId, options, command)
    );

  job.command("show")
    .description("show a job")
    .argument("<job-id>", JOB_ID)
    .option("--json", JSON_HELP)
    .addHelpText(
      "after",
      '\nExamples:\n  tml job show "$JOB"\n  tml job show "$JOB" --json | jq -r .state',
    )
    .action(async (jobId, options, command) =>
      await (await readCode()).show(jobId, options, command)
    );

  job.command("list")
    .description("list your jobs, newest first (everyone's with list_jobs)")
    .option("--state <state>", "only jobs in this state, or active for all not yet terminated")
    .option("--limit <n>", "how many jobs to show (default 50); with --all, the page size")
    .option("--all", "every job, page by page")
    .option("--json", JSON_HELP)
    .addHelpText("after", "\nExamples:\n  tml job list --state active\n  tml job list --all --json")
    .action(async (options, command) => await (await readCode()).list(options, command));

  job.command("history")
    .description("every state and exit-status change, with times and how long each phase took")
    .argument("<job-id>", JOB_ID)
    .option("--json", JSON_HELP)
    .addHelpText("after", '\nExample:\n  tml job history "$JOB"')
    .action(async (jobId, options, command) =>
      await (await readCode()).history(jobId, options, command)
    );

  job.command("logs")
    .description("print a job's console output (secret values redacted)")
    .argument("<job-id>", JOB_ID)
    .option("-f, --follow", "keep streaming until the job has terminated; resumes after drops")
    .option("--offset <bytes>", "start at this byte offset")
    .addHelpText("after", '\nExamples:\n  tml job logs "$JOB"\n  tml job logs -f "$JOB"')
    .action(async (jobId, options, command) =>
      await (await import("./job_logs.ts")).logs(jobId, options, command)
    );

  job.command("cancel")
    .description("cancel a job; prints its view as JSON")
    .argument("<job-id>", JOB_ID)
    .addHelpText("after", '\nExample:\n  tml job cancel "$JOB"')
    .action(async (jobId, _options, command) => await (await controlCode()).cancel(jobId, command));

  job.command("wait")
    .description("wait until a job terminates; prints it as JSON, the exit code tells the outcome")
    .argument("<job-id>", JOB_ID)
    .option("--timeout <duration>", "give up after this long, e.g. 2h (exit code 15)")
    .option("--no-follow-restarts", "do not follow a restarted job to the job that replaced it")
    .addHelpText(
      "after",
      `
Rides out network errors and switchboard restarts. A job re-enqueued by its restart count is
followed to its last attempt, whose outcome decides the exit code.

${exitCodeTableText()}

Examples:
  tml job wait "$JOB" --timeout 2h; echo "outcome: $?"
  tml job wait "$JOB" | jq -r .exit_status`,
    )
    .action(async (jobId, options, command) =>
      await (await controlCode()).wait(jobId, options, command)
    );
  return job;
}
