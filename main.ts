/**
 * The `tml` executable: builds the command tree and runs it. Each role contributes a
 * `commands.ts` that only declares its commands; the code behind a command is imported when the
 * command runs, so `tml job enqueue` never loads PGlite or QEMU code.
 */
import { Command } from "commander";
import { TML_VERSION } from "./lib/version.ts";
import { runCli } from "./lib/cli/run.ts";
import { registerClientCommands } from "./roles/client/commands.ts";

export function buildProgram(): Command {
  const program = new Command("tml")
    .description("tml: a distributed hardware testbed")
    .version(TML_VERSION, "-V, --version", "print the tml version")
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true });
  registerClientCommands(program);
  return program;
}

if (import.meta.main) {
  await runCli(buildProgram(), Deno.args);
}
