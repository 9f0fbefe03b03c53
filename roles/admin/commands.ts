/** Declares the `tml admin` commands; the code behind each loads when it runs. */
import type { Command } from "commander";

export function registerAdminCommands(_program: Command): void {
}
