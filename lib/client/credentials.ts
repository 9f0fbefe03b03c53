/**
 * Where the CLI finds the switchboard and its token. The API URL comes from `--api-url`, then
 * `TML_API_URL`, then `api_url` in the config file (`TML_CONFIG`, default
 * `$XDG_CONFIG_HOME/tml/config.toml`, i.e. `~/.config/tml/config.toml`), then the local
 * default. The token comes from `TML_API_TOKEN` (scripts and CI; it wins), then the login that
 * `tml login` stored for that URL in `credentials.json` beside the config (mode 0600).
 *
 * Every function takes the environment as an argument (default: the process's), so tests
 * resolve against a scratch directory.
 */
import { z } from "zod";
import { configList, loadConfig } from "../config.ts";
import { ClientError } from "./errors.ts";

export const DEFAULT_API_URL = "http://127.0.0.1:7100";

export type Env = Record<string, string | undefined>;

function processEnv(): Env {
  return Deno.env.toObject();
}

export const ClientConfig = z.object({
  /** The switchboard's base URL (`TML_API_URL`, `--api-url`). */
  api_url: z.url().optional(),
  /** Public keys added to every job (`TML_SSH_KEYS`), in place of ~/.ssh/*.pub. */
  ssh_keys: configList().optional(),
});
export type ClientConfig = z.infer<typeof ClientConfig>;

/** One stored login per API URL. */
export const StoredLogin = z.object({
  token: z.string().min(1),
  user: z.string().optional(),
  token_id: z.string().optional(),
  expires_at: z.string().optional(),
});
export type StoredLogin = z.infer<typeof StoredLogin>;

const StoredCredentials = z.record(z.string(), StoredLogin);
type StoredCredentials = z.infer<typeof StoredCredentials>;

/** `$XDG_CONFIG_HOME/tml`, else `~/.config/tml`. */
export function configDir(env: Env = processEnv()): string {
  const base = env.XDG_CONFIG_HOME || `${env.HOME ?? "."}/.config`;
  return `${base}/tml`;
}

/** The client's config file: `TML_CONFIG`, else `config.toml` in the config directory. */
export function configFile(env: Env = processEnv()): string {
  return env.TML_CONFIG || `${configDir(env)}/config.toml`;
}

export function credentialsFile(env: Env = processEnv()): string {
  return `${configDir(env)}/credentials.json`;
}

/** Loads the config file (when it exists) with the environment and flags on top. */
export async function loadClientConfig(
  flags: { apiUrl?: string } = {},
  env: Env = processEnv(),
): Promise<ClientConfig> {
  const file = configFile(env);
  // A file named by TML_CONFIG must exist; the default one is optional.
  const exists = env.TML_CONFIG ? true : await Deno.stat(file).then(() => true, () => false);
  return await loadConfig(ClientConfig, {
    file: exists ? file : undefined,
    env: Object.fromEntries(
      Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
    ),
    flags: { api_url: flags.apiUrl },
    // The file is shared by every client command (`tml image` reads its own keys from it).
    strict: false,
  });
}

/** The API base URL without trailing slashes; the local default when none is configured. */
export function apiUrlOf(config: { api_url?: string }): string {
  return (config.api_url ?? DEFAULT_API_URL).replace(/\/+$/, "");
}

/** Reads every stored login; none when the file does not exist. */
export async function readStoredLogins(env: Env = processEnv()): Promise<StoredCredentials> {
  const path = credentialsFile(env);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return {};
    throw new ClientError(
      "invalid_credentials_file",
      `Cannot read stored logins "${path}": ${(error as Error).message}`,
      400,
      undefined,
      error,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = StoredCredentials.safeParse(json);
  if (!parsed.success) {
    throw new ClientError(
      "invalid_credentials_file",
      `Cannot read stored logins "${path}": not a tml credentials file (delete it and run "tml login")`,
      400,
    );
  }
  return parsed.data;
}

/** The token for `apiUrl`: TML_API_TOKEN, else the stored login; undefined when neither. */
export async function findToken(
  apiUrl: string,
  env: Env = processEnv(),
): Promise<string | undefined> {
  const fromEnv = env.TML_API_TOKEN?.trim();
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  return (await readStoredLogins(env))[apiUrl]?.token;
}

/** Like findToken, but a ClientError saying how to log in when there is no token. */
export async function requireToken(apiUrl: string, env: Env = processEnv()): Promise<string> {
  const token = await findToken(apiUrl, env);
  if (token === undefined) {
    throw new ClientError(
      "not_logged_in",
      `Cannot authenticate to "${apiUrl}": set TML_API_TOKEN or run "tml login"`,
      401,
    );
  }
  return token;
}

/** Stores the login for `apiUrl`, replacing an earlier one for the same URL. */
export async function storeLogin(
  apiUrl: string,
  login: StoredLogin,
  env: Env = processEnv(),
): Promise<void> {
  const stored = await readStoredLogins(env);
  stored[apiUrl] = login;
  await writeStored(stored, env);
}

/** Forgets the login for `apiUrl`; returns it, or undefined when there was none. */
export async function forgetLogin(
  apiUrl: string,
  env: Env = processEnv(),
): Promise<StoredLogin | undefined> {
  const stored = await readStoredLogins(env);
  const login = stored[apiUrl];
  if (login === undefined) return undefined;
  delete stored[apiUrl];
  await writeStored(stored, env);
  return login;
}

/**
 * Replaces the credentials file atomically. The temporary file is created with mode 0600
 * before any token is written to it, so no other user can ever read a token.
 */
async function writeStored(stored: StoredCredentials, env: Env): Promise<void> {
  const dir = configDir(env);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const path = credentialsFile(env);
  const temporary = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(temporary, JSON.stringify(stored, null, 2) + "\n", {
    createNew: true,
    mode: 0o600,
  });
  await Deno.rename(temporary, path);
}
