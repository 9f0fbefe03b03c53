/**
 * `tml login`, `tml logout` and `tml whoami`. Login trades a user name or email and a password
 * for a token and stores it for the switchboard's URL; logout revokes that token and forgets
 * it.
 */
import type { Command } from "commander";
import {
  fieldTable,
  note,
  type OutputOptions,
  printJson,
  printResult,
} from "../../lib/cli/output.ts";
import { type Env, forgetLogin, storeLogin } from "../../lib/client/credentials.ts";
import { SwitchboardClient } from "../../lib/client/switchboard_client.ts";
import { parseDuration } from "../../lib/duration.ts";
import { TmlError } from "../../lib/errors.ts";
import { promptLine } from "./prompt.ts";
import { authenticatedClient, clientSettings } from "./session.ts";

export interface LoginSources {
  user?: string;
  password?: string;
  passwordStdin: boolean;
  env: Env;
  stdinIsTerminal: boolean;
  readStdin: () => Promise<string>;
  ask: (message: string, hidden: boolean) => Promise<string>;
}

/**
 * Who logs in with what. The user: the argument, else `TML_USER`, else a prompt. The password:
 * the argument, else standard input with `--password-stdin`, else `TML_PASSWORD`, else a
 * hidden prompt. Prompts need a terminal; without one the error says what to set.
 */
export async function resolveLogin(
  sources: LoginSources,
): Promise<{ user: string; password: string }> {
  let user = sources.user ?? sources.env.TML_USER;
  if (user === undefined || user === "") {
    if (!sources.stdinIsTerminal || sources.passwordStdin) {
      throw loginInputError("no user given (pass USER or set TML_USER)");
    }
    user = (await sources.ask("User (name or email): ", false)).trim();
  }
  let password = sources.password;
  if (password === undefined && sources.passwordStdin) {
    password = (await sources.readStdin()).replace(/\r?\n$/, "");
  }
  password ??= sources.env.TML_PASSWORD;
  if (password === undefined) {
    if (!sources.stdinIsTerminal) {
      throw loginInputError(
        "no password given and stdin is not a terminal (set TML_PASSWORD or use --password-stdin)",
      );
    }
    password = await sources.ask("Password: ", true);
  }
  if (user === "") throw loginInputError("the user is empty");
  if (password === "") throw loginInputError("the password is empty");
  return { user, password };
}

function loginInputError(detail: string): TmlError {
  return new TmlError("invalid_input", `Cannot log in: ${detail}`, { status: 400 });
}

export async function login(
  user: string | undefined,
  password: string | undefined,
  options: { passwordStdin?: boolean; expiresIn?: string },
  command: Command,
): Promise<void> {
  if (options.expiresIn !== undefined) parseDuration(options.expiresIn, "--expires-in");
  const { apiUrl } = await clientSettings(command);
  const credentials = await resolveLogin({
    user,
    password,
    passwordStdin: options.passwordStdin === true,
    env: Deno.env.toObject(),
    stdinIsTerminal: Deno.stdin.isTerminal(),
    readStdin: () => new Response(Deno.stdin.readable).text(),
    ask: (message, hidden) => promptLine(message, { hidden }),
  });
  const created = await new SwitchboardClient(apiUrl).login(
    credentials.user,
    credentials.password,
    options.expiresIn,
  );
  await storeLogin(apiUrl, {
    token: created.token,
    user: credentials.user,
    token_id: created.token_id,
    expires_at: created.expires_at,
  });
  note(`Logged in to ${apiUrl} as ${credentials.user} (token expires ${created.expires_at})`);
  // The token itself stays in the credentials file, out of logs and terminals.
  printJson({
    api_url: apiUrl,
    user_id: created.user_id,
    token_id: created.token_id,
    expires_at: created.expires_at,
  });
}

export async function logout(command: Command): Promise<void> {
  const { apiUrl } = await clientSettings(command);
  const forgotten = await forgetLogin(apiUrl);
  if (forgotten === undefined) {
    note(`Not logged in to ${apiUrl}`);
    return;
  }
  if (forgotten.token_id !== undefined) {
    try {
      await new SwitchboardClient(apiUrl, forgotten.token).revokeToken(forgotten.token_id);
    } catch (error) {
      note(`tml: warning: the token was forgotten but not revoked: ${(error as Error).message}`);
    }
  }
  note(`Logged out of ${apiUrl}`);
}

export async function whoami(options: OutputOptions, command: Command): Promise<void> {
  const client = await authenticatedClient(command);
  const identity = await client.whoami();
  printResult(
    options,
    { api_url: client.baseUrl, ...identity },
    fieldTable({
      api_url: client.baseUrl,
      ...identity,
      permissions: identity.permissions.join(", "),
    }),
  );
}
