/**
 * Declares the client commands (`tml login`, `tml job …`, `tml token …`, `tml supervisor
 * list|show`); the code behind each loads when it runs, so `tml job enqueue` never loads the
 * switchboard's database code.
 */
import type { Command } from "commander";
import { EXIT_CODE_TABLE } from "../../lib/cli/exit_codes.ts";
import { registerImageCommands } from "./image_commands.ts";

const lazyJob = () => import("./job_commands.ts");
const lazyAccount = () => import("./account_commands.ts");

export function registerClientCommands(program: Command, supervisor: Command): void {
  program.option(
    "--api-url <url>",
    "switchboard base URL (TML_API_URL; default http://127.0.0.1:7100)",
  );

  program.command("login [user] [password]")
    .description("log in and store a token for this switchboard")
    .option("--password-stdin", "read the password from standard input")
    .option("--expires-in <duration>", "token lifetime, e.g. 7d")
    .addHelpText(
      "after",
      `
User is a name or an email; without arguments, TML_USER and TML_PASSWORD are used, then a prompt.

Examples:
  tml login alice
  echo "$PASSWORD" | tml login alice --password-stdin`,
    )
    .action(async (user, password, options, command) =>
      (await lazyAccount()).login(user, password, options, command)
    );
  program.command("logout")
    .description("forget the stored token for this switchboard")
    .action(async (_options, command) => (await lazyAccount()).logout(command));

  const job = program.command("job").description("enqueue, inspect and control jobs");
  job.command("enqueue <image-id>")
    .description("enqueue a job; prints one JSON object with job_id")
    .option("--tag-config <expr>", "which supervisors may run it, e.g. board:nrf52840dk")
    .option("--parameters <json>", `parameters: {"name": {"value": "...", "secret": true}}`)
    .option("--parameter <name=value...>", "a parameter (repeatable)")
    .option("--secret-parameter <name=value...>", "a secret parameter (repeatable)")
    .option("--ssh-key <key...>", "an SSH public key for the host (repeatable)")
    .option("--restart-count <n>", "re-enqueue up to N times after an infrastructure failure")
    .option("--timeout <duration>", "maximum run time, e.g. 30m, 1.5h; a bare number is seconds")
    .option("--queue-timeout <duration>", "maximum time in the queue")
    .option("--workload <command>", "a shell command the host runs; its exit code is the result")
    .addHelpText(
      "after",
      `
Authentication: TML_API_TOKEN, else the token stored by "tml login".

Examples:
  JOB=$(tml job enqueue "$IMAGE_ID" --tag-config "board:$DUT_BOARD" --parameters "$TML_JOB_PARAMETERS" | jq -r .job_id)
  tml job enqueue "$IMAGE_ID" --tag-config 'board:nrf52*' --workload 'make test' --timeout 30m`,
    )
    .action(async (imageId, options, command) =>
      (await import("./job_enqueue.ts")).enqueue(imageId, options, command)
    );
  job.command("show <job-id>")
    .description("show a job")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  tml job show 3f0c2d1e-... --json")
    .action(async (jobId, options, command) => (await lazyJob()).show(jobId, options, command));
  job.command("list")
    .description("list your jobs (all jobs with list_jobs)")
    .option(
      "--state <state>",
      "queued, scheduled, initializing, ready, terminating, terminated, or active",
    )
    .option("--limit <n>", "jobs per page (default 50)")
    .option("--all", "follow every page")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  tml job list --state active")
    .action(async (options, command) => (await lazyJob()).list(options, command));
  job.command("history <job-id>")
    .description("every state and exit-status change, with times and phase durations")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  tml job history 3f0c2d1e-...")
    .action(async (jobId, options, command) => (await lazyJob()).history(jobId, options, command));
  job.command("logs <job-id>")
    .description("print a job's console output (secret values redacted)")
    .option("-f, --follow", "keep streaming until the job has terminated; resumes after drops")
    .option("--offset <bytes>", "start at this byte offset")
    .addHelpText("after", '\nExamples:\n  tml job logs 3f0c2d1e-...\n  tml job logs -f "$JOB"')
    .action(async (jobId, options, command) => (await lazyJob()).logs(jobId, options, command));
  job.command("cancel <job-id>")
    .description("cancel a job")
    .addHelpText("after", "\nExample:\n  tml job cancel 3f0c2d1e-...")
    .action(async (jobId, _options, command) => (await lazyJob()).cancel(jobId, command));
  job.command("wait <job-id>")
    .description("wait until a job terminates; the exit code tells the outcome")
    .option("--timeout <duration>", "give up after this long (exit code 15)")
    .addHelpText(
      "after",
      `\n${EXIT_CODE_TABLE}\n\nExample:\n  tml job wait "$JOB" --timeout 2h; echo "outcome: $?"`,
    )
    .action(async (jobId, options, command) => (await lazyJob()).wait(jobId, options, command));

  const token = program.command("token").description("manage your API tokens");
  token.command("create")
    .description("create a token (printed once)")
    .option("--expires-in <duration>", "lifetime, e.g. 30d (default 30d, at most 365d)")
    .option("--permission <permission...>", "limit the token to these of your permissions")
    .option("--description <text>", "what the token is for")
    .addHelpText(
      "after",
      "\nExample:\n  tml token create --expires-in 90d --permission submit_job --description 'CI on main'",
    )
    .action(async (options, command) => (await lazyAccount()).tokenCreate(options, command));
  token.command("list")
    .description("list your tokens")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  tml token list")
    .action(async (options, command) => (await lazyAccount()).tokenList(options, command));
  token.command("revoke <token-id>")
    .description("revoke a token")
    .addHelpText("after", "\nExample:\n  tml token revoke 8b1d…")
    .action(async (tokenId, _options, command) =>
      (await lazyAccount()).tokenRevoke(tokenId, command)
    );

  supervisor.command("list")
    .description("list supervisors (needs list_supervisors)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  tml supervisor list")
    .action(async (options, command) => (await lazyAccount()).supervisorList(options, command));
  supervisor.command("show <supervisor-id>")
    .description("show a supervisor")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  tml supervisor show 3f0c…")
    .action(async (id, options, command) =>
      (await lazyAccount()).supervisorShow(id, options, command)
    );
  registerImageCommands(program);
}
