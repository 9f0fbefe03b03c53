/**
 * Loads a role's configuration once, in layers: schema defaults < TOML file < `TML_*`
 * environment < command-line flags. Each layer's values remember where they came from, so a
 * validation error names the field and its source: `listen: expected HOST:PORT (TML_LISTEN)`.
 *
 * Keys are snake_case (`database_url`), as in Treadmill's TOML configs. The environment variable
 * of a top-level key is `TML_` + its upper-case name; the flag is its kebab-case name
 * (`--database-url`). Environment and flag values are strings: schemas use `configNumber`,
 * `configBool` and `configList` so one schema accepts both TOML values and strings.
 */
import { z } from "zod";
import { parse as parseToml } from "smol-toml";
import { TmlError } from "./errors.ts";
import { formatIssue, issuePath } from "./zod_issues.ts";

export class ConfigError extends TmlError {
  constructor(message: string, options: { field?: string; cause?: unknown } = {}) {
    super("invalid_config", message, { status: 400, ...options });
  }
}

/** A number, also given as a decimal string (environment, flags). */
export function configNumber() {
  return z.preprocess(
    (value) => typeof value === "string" && value.trim() !== "" ? Number(value) : value,
    z.number(),
  );
}

/** A boolean, also given as `true`/`false`/`1`/`0`/`yes`/`no`. */
export function configBool() {
  return z.preprocess((value) => {
    if (typeof value !== "string") return value;
    const lowered = value.trim().toLowerCase();
    if (["true", "1", "yes", "on"].includes(lowered)) return true;
    if (["false", "0", "no", "off"].includes(lowered)) return false;
    return value;
  }, z.boolean());
}

/** A list of strings, also given as one comma-separated string. */
export function configList() {
  return z.preprocess(
    (value) =>
      typeof value === "string"
        ? value.split(",").map((item) => item.trim()).filter((item) => item !== "")
        : value,
    z.array(z.string()),
  );
}

/** Name of the environment variable for a top-level config key. */
export function envVarName(key: string): string {
  return `TML_${key.toUpperCase()}`;
}

/** Name of the flag for a top-level config key, without the leading dashes. */
export function flagName(key: string): string {
  return key.replaceAll("_", "-");
}

export interface ConfigSources {
  /** Path of a TOML file to read; missing means no file layer. */
  file?: string;
  /** Environment to read `TML_*` variables from; defaults to `Deno.env`. */
  env?: Record<string, string>;
  /** Flag values keyed by config key (snake_case); undefined values are ignored. */
  flags?: Record<string, unknown>;
  /**
   * Reject keys the schema does not know (default). Off for a command that reads only part of
   * another role's file (`tml admin` reads the switchboard's database settings).
   */
  strict?: boolean;
}

type Layer = { source: string; values: Record<string, unknown> };

/** Loads and validates a config object schema from the layered sources. */
export async function loadConfig<T extends z.ZodObject>(
  schema: T,
  sources: ConfigSources = {},
): Promise<z.infer<T>> {
  const layers: Layer[] = [];
  if (sources.file !== undefined) {
    layers.push({ source: sources.file, values: await readTomlFile(sources.file) });
  }
  const env = sources.env ?? Deno.env.toObject();
  const keys = Object.keys(schema.shape);
  const envValues: Record<string, unknown> = {};
  const envSources: Record<string, string> = {};
  for (const key of keys) {
    const name = envVarName(key);
    if (env[name] !== undefined) {
      envValues[key] = env[name];
      envSources[key] = name;
    }
  }
  const flagValues: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(sources.flags ?? {})) {
    if (value !== undefined && keys.includes(key)) flagValues[key] = value;
  }

  const merged: Record<string, unknown> = {};
  const provenance: Record<string, string> = {};
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer.values)) {
      merged[key] = value;
      provenance[key] = layer.source;
    }
  }
  for (const [key, value] of Object.entries(envValues)) {
    merged[key] = value;
    provenance[key] = envSources[key];
  }
  for (const [key, value] of Object.entries(flagValues)) {
    merged[key] = value;
    provenance[key] = `--${flagName(key)}`;
  }

  const result = (sources.strict === false ? schema : schema.strict()).safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const top = issue.path.length > 0
        ? String(issue.path[0])
        : issue.code === "unrecognized_keys"
        ? issue.keys[0]
        : "";
      return formatIssue(issue, provenance[top] ?? "defaults");
    });
    const first = result.error.issues[0];
    throw new ConfigError(`Invalid configuration:\n  ${lines.join("\n  ")}`, {
      field: first === undefined ? undefined : issuePath(first),
    });
  }
  return result.data as z.infer<T>;
}

async function readTomlFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(`Cannot read config file "${path}": ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`Cannot parse config file "${path}": ${(error as Error).message}`, {
      cause: error,
    });
  }
}
