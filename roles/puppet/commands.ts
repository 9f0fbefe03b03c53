/** Declares the `tml puppet` commands; the code behind each loads when it runs. */
import type { Command } from "commander";

export function registerPuppetCommands(_program: Command): void {
}
