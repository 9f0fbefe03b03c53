/**
 * Declares the client commands: a list of register calls, one per command family. The code
 * behind each command loads when it runs, so `tml job enqueue` never loads the switchboard's
 * database code.
 */
import type { Command } from "commander";
import { registerAccountCommands } from "./account_commands.ts";
import { registerImageCommands } from "./image_commands.ts";
import { registerJobCommands } from "./job_commands.ts";
import {
  registerJobRendezvousCommands,
  registerRendezvousClientCommands,
} from "./rendezvous_commands.ts";
import { registerSupervisorClientCommands } from "./supervisor_commands.ts";

export function registerClientCommands(
  program: Command,
  supervisor: Command,
  rendezvous: Command,
): void {
  program.option(
    "--api-url <url>",
    "switchboard base URL (TML_API_URL, or api_url in ~/.config/tml/config.toml; " +
      "default http://127.0.0.1:7100)",
  );
  registerAccountCommands(program);
  registerJobRendezvousCommands(registerJobCommands(program));
  registerSupervisorClientCommands(supervisor);
  registerRendezvousClientCommands(rendezvous);
  registerImageCommands(program);
}
