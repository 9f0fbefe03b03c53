/** `tml token create|list|revoke`: the caller's API tokens, so nobody edits the database. */
import type { Command } from "commander";
import { note, type OutputOptions, printJson, printResult } from "../../lib/cli/output.ts";
import { parseDuration } from "../../lib/duration.ts";
import { authenticatedClient } from "./session.ts";

export async function create(
  options: { expiresIn?: string; permission?: string[]; description?: string },
  command: Command,
): Promise<void> {
  if (options.expiresIn !== undefined) parseDuration(options.expiresIn, "--expires-in");
  const created = await (await authenticatedClient(command)).createToken({
    expires_in: options.expiresIn,
    permissions: options.permission?.length ? options.permission : undefined,
    description: options.description,
  });
  note(`Token ${created.token_id} expires ${created.expires_at}; it is shown only this once`);
  printJson(created);
}

export async function list(options: OutputOptions, command: Command): Promise<void> {
  const result = await (await authenticatedClient(command)).listTokens();
  printResult(options, result, {
    head: ["token", "description", "created", "expires", "revoked", "permissions"],
    rows: result.tokens.map((token) => [
      token.token_id,
      token.description,
      token.created_at,
      token.expires_at,
      token.revoked_at,
      token.permissions === null ? "(all of yours)" : token.permissions.join(", "),
    ]),
  });
}

export async function revoke(tokenId: string, command: Command): Promise<void> {
  const revoked = await (await authenticatedClient(command)).revokeToken(tokenId);
  note(`Revoked token ${revoked.token_id}`);
  printJson(revoked);
}
