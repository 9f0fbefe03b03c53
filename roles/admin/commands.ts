/**
 * Declares `tml admin user …` and `tml admin supervisor …`. They talk to the database
 * directly (`--database-url` / `--data-dir`), so the first admin can be created before any
 * token exists; the code behind them loads only when one runs.
 */
import type { Command } from "commander";
import type { AdminAction } from "./admin.ts";

interface DatabaseFlags {
  databaseUrl?: string;
  dataDir?: string;
  config?: string;
}

export function registerAdminCommands(program: Command): void {
  const adminCommand = program.command("admin")
    .description("administer users and supervisors directly in the switchboard's database")
    .option("--database-url <url>", "PostgreSQL URL (TML_DATABASE_URL)")
    .option(
      "--data-dir <dir>",
      "embedded PGlite data directory, default .tml-data/switchboard (TML_DATA_DIR)",
    )
    .option(
      "--config <file>",
      "switchboard TOML config file to read the database from (TML_CONFIG)",
    )
    .addHelpText(
      "after",
      `
Output is JSON on stdout; messages go to stderr. Tokens and passwords are never logged.
With PGlite (the default) stop the switchboard first: PGlite allows one process at a time.

Examples:
  echo "$PW" | tml admin user create alice --email alice@example.com --password-stdin --grant admin
  tml admin --database-url postgres://tml@db/treadmill_switchboard supervisor register lab1-nrf --tags board:nrf52840dk`,
    );
  const run = (action: AdminAction) => async (...args: unknown[]) => {
    const command = args.at(-1) as Command;
    const positional = args.slice(0, -2).flat() as string[];
    const { runAdmin } = await import("./admin.ts");
    await runAdmin(action, positional, command.opts(), adminCommand.opts() as DatabaseFlags);
  };
  const example = (lines: string) => `\nExample:\n  ${lines}`;

  const user = adminCommand.command("user").description("manage users and their permissions");
  user.command("create <name>")
    .description("create a user (prints its id)")
    .requiredOption("--email <email>", "the user's email; users log in with name or email")
    .option("--password <password>", "the password (visible to other local users: prefer stdin)")
    .option("--password-stdin", "read the password from standard input")
    .option("--system", "a system user, for CI automation")
    .option("--grant <permission...>", "permissions to grant, e.g. submit_job admin")
    .addHelpText(
      "after",
      example(
        'echo "$PW" | tml admin user create alice --email a@example.com --password-stdin --grant submit_job',
      ),
    )
    .action(run("user.create"));
  user.command("list")
    .description("list users and their permissions")
    .option("--json", "print JSON even on a terminal")
    .addHelpText("after", example("tml admin user list --json | jq -r '.users[].name'"))
    .action(run("user.list"));
  user.command("lock <name>")
    .description("lock a user out: no login, and existing tokens stop working")
    .addHelpText("after", example("tml admin user lock alice"))
    .action(run("user.lock"));
  user.command("unlock <name>")
    .description("unlock a locked user")
    .addHelpText("after", example("tml admin user unlock alice@example.com"))
    .action(run("user.unlock"));
  user.command("set-password <name>")
    .description("set a user's password")
    .option("--password <password>", "the password (visible to other local users: prefer stdin)")
    .option("--password-stdin", "read the password from standard input")
    .addHelpText(
      "after",
      example('echo "$NEW_PW" | tml admin user set-password alice --password-stdin'),
    )
    .action(run("user.set-password"));
  user.command("grant <name> <permissions...>")
    .description("grant permissions (admin, submit_job, list_jobs, run_job_on_supervisor:<id>, …)")
    .addHelpText("after", example("tml admin user grant alice submit_job run_job_on_supervisor:*"))
    .action(run("user.grant"));
  user.command("revoke <name> <permissions...>")
    .description("revoke permissions; tokens lose them too")
    .addHelpText("after", example("tml admin user revoke alice admin"))
    .action(run("user.revoke"));

  const supervisor = adminCommand.command("supervisor").description(
    "register supervisors and manage their tokens",
  );
  supervisor.command("register <name>")
    .description("register a supervisor; prints its id and its token (shown once)")
    .option("--tags <tags>", "comma-separated tags, e.g. board:nrf52840dk,site:lab1")
    .option("--token-file <file>", "write the token to this file (mode 0600) instead of stdout")
    .addHelpText(
      "after",
      example(
        "tml admin supervisor register lab1-nrf --tags board:nrf52840dk --token-file /etc/tml/lab1.token",
      ),
    )
    .action(run("supervisor.register"));
  supervisor.command("rotate-token <name-or-id>")
    .description("issue a new token; the old one stops working at once")
    .option("--token-file <file>", "write the token to this file (mode 0600) instead of stdout")
    .addHelpText(
      "after",
      example("tml admin supervisor rotate-token lab1-nrf --token-file /etc/tml/lab1.token"),
    )
    .action(run("supervisor.rotate-token"));
  supervisor.command("remove <name-or-id>")
    .description("remove a supervisor (refused while it holds an unfinished job)")
    .addHelpText("after", example("tml admin supervisor remove lab1-nrf"))
    .action(run("supervisor.remove"));
  supervisor.command("list")
    .description("list registered supervisors")
    .option("--json", "print JSON even on a terminal")
    .addHelpText("after", example("tml admin supervisor list --json | jq -r '.supervisors[].name'"))
    .action(run("supervisor.list"));
}
