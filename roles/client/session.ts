/**
 * The switchboard a client command talks to, and as whom: the API URL from `--api-url`,
 * `TML_API_URL` or the config file, and the token from `TML_API_TOKEN` or the stored login.
 */
import type { Command } from "commander";
import {
  apiUrlOf,
  type ClientConfig,
  loadClientConfig,
  requireToken,
} from "../../lib/client/credentials.ts";
import { SwitchboardClient } from "../../lib/client/switchboard_client.ts";

/** The root program's options, wherever in the tree `command` is. */
export function globalOptions(command: Command): { apiUrl?: string } {
  let root = command;
  while (root.parent !== null) root = root.parent;
  return root.opts() as { apiUrl?: string };
}

/** The client config with `--api-url` applied, and the API URL it resolves to. */
export async function clientSettings(
  command: Command,
): Promise<{ config: ClientConfig; apiUrl: string }> {
  const config = await loadClientConfig(globalOptions(command));
  return { config, apiUrl: apiUrlOf(config) };
}

/** A client that authenticates with the token for the configured switchboard. */
export async function authenticatedClient(command: Command): Promise<SwitchboardClient> {
  const { apiUrl } = await clientSettings(command);
  return new SwitchboardClient(apiUrl, await requireToken(apiUrl));
}
