/** Declares `tml supervisor local|qemu|netboot`; the code behind each loads when it runs. */
import type { Command } from "commander";

export function registerSupervisorRoleCommands(_supervisor: Command): void {
}
