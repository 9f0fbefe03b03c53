/** Declares `tml supervisor list|show` on the `supervisor` command the agents also live under. */
import type { Command } from "commander";
import { JSON_HELP } from "./flags.ts";

const code = () => import("./supervisors.ts");

export function registerSupervisorClientCommands(supervisor: Command): void {
  supervisor.command("list")
    .description("list supervisors, their tags and jobs (needs list_supervisors)")
    .option("--json", JSON_HELP)
    .addHelpText("after", "\nExamples:\n  tml supervisor list\n  tml supervisor list --json")
    .action(async (options, command) => await (await code()).list(options, command));
  supervisor.command("show")
    .description("show one supervisor")
    .argument("<supervisor-id>", "the supervisor's id")
    .option("--json", JSON_HELP)
    .addHelpText(
      "after",
      "\nExample:\n  tml supervisor show 0c4c7a8e-51f2-4d6b-9a43-3e2d1f0a9b8c",
    )
    .action(async (id, options, command) => await (await code()).show(id, options, command));
}
