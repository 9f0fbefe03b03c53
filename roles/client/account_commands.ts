/** `tml login`, `tml logout`, `tml token …` and `tml supervisor list|show`. */
import type { Command } from "commander";
import { note, type OutputOptions, printJson, printResult } from "../../lib/cli/output.ts";
import {
  apiUrlOf,
  forgetToken,
  loadClientConfig,
  storeToken,
} from "../../lib/client/credentials.ts";
import { SwitchboardClient } from "../../lib/client/switchboard_client.ts";
import { TmlError } from "../../lib/errors.ts";
import { authenticatedClient, globalOptions } from "./session.ts";

export async function login(
  user: string | undefined,
  password: string | undefined,
  options: { passwordStdin?: boolean; expiresIn?: string },
  command: Command,
): Promise<void> {
  const apiUrl = apiUrlOf(await loadClientConfig(globalOptions(command)));
  const name = user ?? Deno.env.get("TML_USER") ?? prompt("User (name or email):") ?? "";
  let secret = password ?? Deno.env.get("TML_PASSWORD");
  if (secret === undefined && options.passwordStdin === true) {
    secret = (await new Response(Deno.stdin.readable).text()).replace(/\r?\n$/, "");
  }
  secret ??= await promptHidden("Password: ");
  if (name === "" || secret === "") {
    throw new TmlError("invalid_input", "Cannot log in: a user and a password are required", {
      status: 400,
    });
  }
  const created = await new SwitchboardClient(apiUrl).login(name, secret, options.expiresIn);
  await storeToken(apiUrl, created.token, name);
  note(`Logged in to ${apiUrl} as ${name} (token expires ${created.expires_at})`);
  printJson({
    user_id: created.user_id,
    token_id: created.token_id,
    expires_at: created.expires_at,
  });
}

export async function logout(command: Command): Promise<void> {
  const apiUrl = apiUrlOf(await loadClientConfig(globalOptions(command)));
  note((await forgetToken(apiUrl)) ? `Logged out of ${apiUrl}` : `Not logged in to ${apiUrl}`);
}

export async function tokenCreate(
  options: { expiresIn?: string; permission?: string[]; description?: string },
  command: Command,
): Promise<void> {
  const client = await authenticatedClient(command);
  printJson(
    await client.createToken({
      expires_in: options.expiresIn,
      permissions: options.permission,
      description: options.description,
    }),
  );
}

export async function tokenList(options: OutputOptions, command: Command): Promise<void> {
  const result = await (await authenticatedClient(command)).listTokens();
  printResult(options, result, {
    head: ["token", "description", "created", "expires", "revoked", "permissions"],
    rows: result.tokens.map((
      t,
    ) => [
      t.token_id,
      t.description,
      t.created_at,
      t.expires_at,
      t.revoked_at,
      t.permissions?.join(",") ?? "(all)",
    ]),
  });
}

export async function tokenRevoke(tokenId: string, command: Command): Promise<void> {
  printJson(await (await authenticatedClient(command)).revokeToken(tokenId));
}

export async function supervisorList(options: OutputOptions, command: Command): Promise<void> {
  const result = await (await authenticatedClient(command)).listSupervisors();
  printResult(options, result, {
    head: ["supervisor", "name", "tags", "connected", "job", "last seen"],
    rows: result.supervisors.map((
      s,
    ) => [
      s.supervisor_id,
      s.name,
      s.tags.join(","),
      s.connected ? "yes" : "no",
      s.current_job_id,
      s.last_seen_at,
    ]),
  });
}

export async function supervisorShow(
  id: string,
  options: OutputOptions,
  command: Command,
): Promise<void> {
  const supervisor = await (await authenticatedClient(command)).getSupervisor(id);
  printResult(options, supervisor, {
    head: ["field", "value"],
    rows: Object.entries(supervisor).map((
      [key, value],
    ) => [key, Array.isArray(value) ? value.join(",") : String(value)]),
  });
}

/** Reads a line from the terminal without echoing it. */
async function promptHidden(message: string): Promise<string> {
  if (!Deno.stdin.isTerminal()) {
    throw new TmlError(
      "invalid_input",
      "Cannot ask for a password: stdin is not a terminal (use TML_PASSWORD or --password-stdin)",
      { status: 400 },
    );
  }
  await Deno.stderr.write(new TextEncoder().encode(message));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  const buffer = new Uint8Array(1);
  try {
    while (true) {
      const read = await Deno.stdin.read(buffer);
      if (read === null || buffer[0] === 13 || buffer[0] === 10) break;
      if (buffer[0] === 3) throw new TmlError("interrupted", "Interrupted", { status: 400 });
      if (buffer[0] === 127) bytes.pop();
      else bytes.push(buffer[0]);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(new TextEncoder().encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
