/**
 * Declares `tml admin user …` and `tml admin supervisor …`. They talk to the database
 * directly (`--database-url` / `--data-dir`), so the first admin can be created before any
 * token exists; the code behind them loads only when one runs.
 */
import type { Command } from "commander";

type AdminAction = (
  args: string[],
  options: Record<string, unknown>,
  db: DbOptions,
) => Promise<void>;
interface DbOptions {
  databaseUrl?: string;
  dataDir?: string;
  config?: string;
}

export function registerAdminCommands(program: Command): void {
  const adminCommand = program.command("admin")
    .description("administer users and supervisors directly in the database")
    .option("--database-url <url>", "PostgreSQL URL (TML_DATABASE_URL)")
    .option("--data-dir <dir>", "embedded PGlite data directory (TML_DATA_DIR)")
    .option("--config <file>", "switchboard TOML config file (TML_CONFIG)")
    .addHelpText(
      "after",
      `
With PGlite (the default) stop the switchboard first: PGlite allows one process at a time.

Examples:
  tml admin user create alice --email alice@example.com --password-stdin --grant submit_job
  tml admin --database-url postgres://tml@db/treadmill_switchboard supervisor register lab1-nrf --tags board:nrf52840dk`,
    );
  const run = (action: string) => async (...args: unknown[]) => {
    const command = args.at(-1) as Command;
    const options = command.opts();
    const positional = args.slice(0, -2).flat() as string[];
    const { runAdmin } = await import("./admin.ts");
    await runAdmin(action, positional, options, adminCommand.opts() as DbOptions);
  };

  const user = adminCommand.command("user").description("manage users");
  user.command("create <name>")
    .description("create a user")
    .requiredOption("--email <email>", "the user's email")
    .option("--password <password>", "the password (prefer --password-stdin)")
    .option("--password-stdin", "read the password from standard input")
    .option("--system", "a system user (for CI automation)")
    .option("--grant <permission...>", "permissions to grant")
    .addHelpText(
      "after",
      '\nExample:\n  echo "$PW" | tml admin user create alice --email a@example.com --password-stdin --grant submit_job',
    )
    .action(run("user.create"));
  user.command("list").description("list users and their permissions").action(run("user.list"));
  user.command("lock <name>").description("lock a user out").action(run("user.lock"));
  user.command("unlock <name>").description("unlock a user").action(run("user.unlock"));
  user.command("set-password <name>")
    .description("set a user's password")
    .option("--password <password>", "the password (prefer --password-stdin)")
    .option("--password-stdin", "read the password from standard input")
    .action(run("user.set-password"));
  user.command("grant <name> <permissions...>")
    .description("grant permissions")
    .addHelpText(
      "after",
      "\nExample:\n  tml admin user grant alice submit_job run_job_on_supervisor:*",
    )
    .action(run("user.grant"));
  user.command("revoke <name> <permissions...>").description("revoke permissions").action(
    run("user.revoke"),
  );

  const supervisor = adminCommand.command("supervisor").description("manage supervisors");
  supervisor.command("register <name>")
    .description("register a supervisor; prints its id and token")
    .option("--tags <tags>", "comma-separated tags, e.g. board:nrf52840dk,site:lab1")
    .option(
      "--token-file <file>",
      "write the token to this file (mode 0600) instead of printing it",
    )
    .addHelpText(
      "after",
      "\nExample:\n  tml admin supervisor register lab1-nrf --tags board:nrf52840dk --token-file /etc/tml/lab1.token",
    )
    .action(run("supervisor.register"));
  supervisor.command("rotate-token <name-or-id>")
    .description("issue a new token; the old one stops working")
    .option(
      "--token-file <file>",
      "write the token to this file (mode 0600) instead of printing it",
    )
    .action(run("supervisor.rotate-token"));
  supervisor.command("remove <name-or-id>").description("remove a supervisor").action(
    run("supervisor.remove"),
  );
  supervisor.command("list").description("list registered supervisors").action(
    run("supervisor.list"),
  );
}

export type { AdminAction };
