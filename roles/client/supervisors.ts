/** `tml supervisor list|show`: the supervisors the caller may see, with their tags and jobs. */
import type { Command } from "commander";
import { fieldTable, type OutputOptions, printResult } from "../../lib/cli/output.ts";
import { authenticatedClient } from "./session.ts";

export async function list(options: OutputOptions, command: Command): Promise<void> {
  const result = await (await authenticatedClient(command)).listSupervisors();
  printResult(options, result, {
    head: ["supervisor", "name", "tags", "connected", "job", "last seen"],
    rows: result.supervisors.map((supervisor) => [
      supervisor.supervisor_id,
      supervisor.name,
      supervisor.tags.join(", "),
      supervisor.connected ? "yes" : "no",
      supervisor.current_job_id,
      supervisor.last_seen_at,
    ]),
  });
}

export async function show(id: string, options: OutputOptions, command: Command): Promise<void> {
  const supervisor = await (await authenticatedClient(command)).getSupervisor(id);
  printResult(
    options,
    supervisor,
    fieldTable({ ...supervisor, tags: supervisor.tags.join(", ") }),
  );
}
