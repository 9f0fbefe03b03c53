/** Declares the `tml switchboard` commands; the code behind each loads when it runs. */
import type { Command } from "commander";

export function registerSwitchboardCommands(_program: Command): void {
}
