/**
 * The `tml` executable: builds the command tree and runs it. Each role contributes a
 * `commands.ts` that only declares its commands; the code behind a command is imported when the
 * command runs, so `tml job enqueue` never loads PGlite or QEMU code.
 */
import { Command } from "commander";
import { TML_VERSION } from "./lib/version.ts";
import { runCli } from "./lib/cli/run.ts";
import { registerClientCommands } from "./roles/client/commands.ts";
import { registerSwitchboardCommands } from "./roles/switchboard/commands.ts";
import { registerSupervisorRoleCommands } from "./roles/supervisor/commands.ts";
import { registerPuppetCommands } from "./roles/puppet/commands.ts";
import { registerImageStoreCommands } from "./roles/image_store/commands.ts";
import { registerAdminCommands } from "./roles/admin/commands.ts";
import { registerRendezvousRoleCommands } from "./roles/rendezvous/commands.ts";

export function buildProgram(): Command {
  const program = new Command("tml")
    .description("tml: a distributed hardware testbed")
    .version(TML_VERSION, "-V, --version", "print the tml version")
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true });
  // `tml supervisor` holds both the agent roles (local, qemu, netboot) and the client's
  // list/show, so it is created here and handed to both.
  const supervisor = program.command("supervisor").description(
    "run a supervisor agent, or list and inspect supervisors",
  );
  registerSupervisorRoleCommands(supervisor);
  // `tml rendezvous` likewise: the server (serve) and the client's ssh ProxyCommand (connect).
  const rendezvous = program.command("rendezvous").description(
    "run a rendezvous server, or connect through one to a job's host",
  );
  registerRendezvousRoleCommands(rendezvous);
  registerClientCommands(program, supervisor, rendezvous);
  registerSwitchboardCommands(program);
  registerPuppetCommands(program);
  registerImageStoreCommands(program);
  registerAdminCommands(program);
  return program;
}

if (import.meta.main) {
  await runCli(buildProgram(), Deno.args);
}
