/**
 * Where the CLI finds the switchboard and its token. The API URL comes from `--api-url`, then
 * `TML_API_URL`, then `api_url` in `~/.config/tml/config.toml`, then the local default. The
 * token comes from `TML_API_TOKEN` (scripts and CI; it wins), then the login stored by
 * `tml login` for that URL in `~/.config/tml/credentials.json` (mode 0600).
 */
import { z } from "zod";
import { configList, loadConfig } from "../config.ts";
import { TmlError } from "../errors.ts";

export const DEFAULT_API_URL = "http://127.0.0.1:7100";

export const ClientConfig = z.object({
  api_url: z.url().optional(),
  /** Public keys added to every job (in addition to ~/.ssh/*.pub and tml's own key). */
  ssh_keys: configList().optional(),
});
export type ClientConfig = z.infer<typeof ClientConfig>;

const StoredCredentials = z.record(
  z.string(),
  z.object({ token: z.string(), user: z.string().optional() }),
);

export function configDir(): string {
  const base = Deno.env.get("XDG_CONFIG_HOME") ?? `${Deno.env.get("HOME") ?? "."}/.config`;
  return `${base}/tml`;
}

/** Loads `~/.config/tml/config.toml` (if present) with the environment and flags on top. */
export async function loadClientConfig(flags: { apiUrl?: string } = {}): Promise<ClientConfig> {
  const file = `${configDir()}/config.toml`;
  const exists = await Deno.stat(file).then(() => true, () => false);
  return await loadConfig(ClientConfig, {
    file: exists ? file : undefined,
    flags: { api_url: flags.apiUrl },
    strict: false,
  });
}

export function apiUrlOf(config: ClientConfig): string {
  return (config.api_url ?? DEFAULT_API_URL).replace(/\/+$/, "");
}

async function readStored(): Promise<z.infer<typeof StoredCredentials>> {
  try {
    return StoredCredentials.parse(
      JSON.parse(await Deno.readTextFile(`${configDir()}/credentials.json`)),
    );
  } catch {
    return {};
  }
}

/** The token for `apiUrl`: TML_API_TOKEN, else the stored login; undefined when neither. */
export async function findToken(apiUrl: string): Promise<string | undefined> {
  const fromEnv = Deno.env.get("TML_API_TOKEN");
  if (fromEnv !== undefined && fromEnv.trim() !== "") return fromEnv.trim();
  return (await readStored())[apiUrl]?.token;
}

export async function requireToken(apiUrl: string): Promise<string> {
  const token = await findToken(apiUrl);
  if (token === undefined) {
    throw new TmlError(
      "not_logged_in",
      `Cannot authenticate to "${apiUrl}": set TML_API_TOKEN or run "tml login"`,
      { status: 401 },
    );
  }
  return token;
}

export async function storeToken(apiUrl: string, token: string, user: string): Promise<void> {
  const stored = await readStored();
  stored[apiUrl] = { token, user };
  await writeStored(stored);
}

export async function forgetToken(apiUrl: string): Promise<boolean> {
  const stored = await readStored();
  if (stored[apiUrl] === undefined) return false;
  delete stored[apiUrl];
  await writeStored(stored);
  return true;
}

/** Replaces the credentials file atomically, readable only by its owner. */
async function writeStored(stored: z.infer<typeof StoredCredentials>): Promise<void> {
  await Deno.mkdir(configDir(), { recursive: true, mode: 0o700 });
  const path = `${configDir()}/credentials.json`;
  const temporary = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(temporary, JSON.stringify(stored, null, 2), { mode: 0o600 });
  await Deno.chmod(temporary, 0o600);
  await Deno.rename(temporary, path);
}
