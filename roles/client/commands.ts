/** Declares the client commands (`tml login`, `tml job …`, `tml token …`); code loads lazily. */
import type { Command } from "commander";

export function registerClientCommands(_program: Command): void {
}
