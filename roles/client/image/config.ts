/**
 * Where the `tml image` commands find their image store and upload token. Settings load in
 * layers (`lib/config.ts`): defaults < `~/.config/tml/config.toml` (or `--config FILE`) <
 * `TML_*` environment < flags. The token is the first of: `--token-file` / `TML_TOKEN_FILE`,
 * `TML_API_TOKEN`, the login `tml login` stored for the switchboard (`api_url`). A switchboard
 * API token needs the `push_image` permission; a standalone store takes its upload token.
 */
import { z } from "zod";
import { loadConfig } from "../../../lib/config.ts";
import { apiUrlOf, configDir, findToken } from "../../../lib/client/credentials.ts";
import { ImageCommandError } from "./errors.ts";

export const ImageClientConfig = z.object({
  /** The image store's base URL (`TML_IMAGE_STORE`). */
  image_store: z.url().optional(),
  /** File holding the upload token (`TML_TOKEN_FILE`); its first line is used. */
  token_file: z.string().min(1).optional(),
  /** The switchboard, whose stored login is the fallback token (`TML_API_URL`). */
  api_url: z.url().optional(),
});
export type ImageClientConfig = z.infer<typeof ImageClientConfig>;

export interface ClientFlags {
  store?: string;
  tokenFile?: string;
  config?: string;
}

export async function loadImageClientConfig(flags: ClientFlags): Promise<ImageClientConfig> {
  const defaultFile = `${configDir()}/config.toml`;
  const file = flags.config ?? Deno.env.get("TML_CONFIG") ??
    (await Deno.stat(defaultFile).then(() => defaultFile, () => undefined));
  return await loadConfig(ImageClientConfig, {
    file,
    flags: { image_store: flags.store, token_file: flags.tokenFile },
    // The file is shared by every client command; keys of the others are theirs to check.
    strict: false,
  });
}

/** The store URL, without trailing slashes; a clear error when none is configured. */
export function requireStoreUrl(config: ImageClientConfig): string {
  if (config.image_store === undefined) {
    throw new ImageCommandError(
      "missing_store",
      "Cannot reach an image store: give --store URL or set TML_IMAGE_STORE",
      { field: "image_store" },
    );
  }
  return config.image_store.replace(/\/+$/, "");
}

/** The upload token, or undefined when none is configured anywhere. */
export async function uploadToken(config: ImageClientConfig): Promise<string | undefined> {
  if (config.token_file === undefined) return await findToken(apiUrlOf(config));
  let text: string;
  try {
    text = await Deno.readTextFile(config.token_file);
  } catch (error) {
    throw new ImageCommandError(
      "invalid_token_file",
      `Cannot read token file "${config.token_file}": ${(error as Error).message}`,
      { field: "token_file", cause: error },
    );
  }
  const token = text.split("\n")[0].trim();
  if (token === "") {
    throw new ImageCommandError(
      "invalid_token_file",
      `Cannot read token file "${config.token_file}": it is empty`,
      { field: "token_file" },
    );
  }
  return token;
}
