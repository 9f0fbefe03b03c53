/** Builds the switchboard client a command uses, from `--api-url`, the environment and config. */
import type { Command } from "commander";
import { apiUrlOf, loadClientConfig, requireToken } from "../../lib/client/credentials.ts";
import { SwitchboardClient } from "../../lib/client/switchboard_client.ts";

/** The root program's options, wherever in the tree `command` is. */
export function globalOptions(command: Command): { apiUrl?: string } {
  let root = command;
  while (root.parent !== null) root = root.parent;
  return root.opts() as { apiUrl?: string };
}

export async function authenticatedClient(command: Command): Promise<SwitchboardClient> {
  const config = await loadClientConfig(globalOptions(command));
  const apiUrl = apiUrlOf(config);
  return new SwitchboardClient(apiUrl, await requireToken(apiUrl));
}
