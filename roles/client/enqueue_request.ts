/**
 * Turns `tml job enqueue`'s flags into a request body and validates it with the API's own
 * schema before anything is sent, so a CI script learns which flag is wrong without a round
 * trip: `Cannot enqueue job: --parameters: x.value: expected string, received number`.
 */
import type { z } from "zod";
import { TmlError } from "../../lib/errors.ts";
import { EnqueueJobRequest } from "../../lib/protocol/api.ts";
import type { EnqueueInput } from "../../lib/client/switchboard_client.ts";
import { parseTagFilter, TagFilterSyntaxError } from "../../lib/tags/mod.ts";

export interface EnqueueFlags {
  tagConfig?: string;
  parameters?: string;
  parameter?: string[];
  secretParameter?: string[];
  restartCount?: string;
  timeout?: string;
  queueTimeout?: string;
  workload?: string;
}

/** The flag (or argument) each request field comes from, for error messages. */
const FLAG_OF_FIELD: Record<string, string> = {
  image_id: "image_id",
  tag_config: "--tag-config",
  parameters: "--parameters",
  ssh_keys: "--ssh-key",
  restart_count: "--restart-count",
  timeout: "--timeout",
  queue_timeout: "--queue-timeout",
  workload: "--workload",
};

/** The error of invalid enqueue input: a usage error (exit code 2) naming the flag. */
export function enqueueInputError(flag: string, detail: string, field: string): TmlError {
  return new TmlError("invalid_input", `Cannot enqueue job: ${flag}: ${detail}`, {
    status: 400,
    field,
  });
}

/**
 * Builds and validates the request. `--parameters` is the JSON object CI scripts pass (an
 * empty string means none, as an unset `$TML_JOB_PARAMETERS` gives); `--parameter` and
 * `--secret-parameter` add or replace single entries.
 */
export function buildEnqueueRequest(
  imageId: string,
  flags: EnqueueFlags,
  sshKeys: string[],
): EnqueueInput {
  const tagConfig = flags.tagConfig ?? "";
  try {
    parseTagFilter(tagConfig);
  } catch (error) {
    if (error instanceof TagFilterSyntaxError) {
      throw enqueueInputError("--tag-config", error.message, "tag_config");
    }
    throw error;
  }
  const body = {
    image_id: imageId,
    tag_config: tagConfig,
    parameters: parseParameters(flags),
    ssh_keys: sshKeys,
    restart_count: flags.restartCount === undefined ? undefined : wholeNumber(flags.restartCount),
    timeout: flags.timeout,
    queue_timeout: flags.queueTimeout,
    workload: flags.workload ?? null,
  };
  const parsed = EnqueueJobRequest.safeParse(body);
  if (!parsed.success) throw fromIssue(parsed.error.issues[0]);
  // The body as given, not the parsed one: durations go as written ("30m"); parsed they would
  // be milliseconds, which the switchboard would read as seconds.
  return body as EnqueueInput;
}

/** `--parameters JSON` merged with `--parameter NAME=VALUE` and `--secret-parameter NAME=VALUE`. */
export function parseParameters(flags: EnqueueFlags): Record<string, unknown> {
  const parameters: Record<string, unknown> = {};
  if (flags.parameters !== undefined && flags.parameters.trim() !== "") {
    let json: unknown;
    try {
      json = JSON.parse(flags.parameters);
    } catch (error) {
      throw enqueueInputError(
        "--parameters",
        `expected a JSON object: ${(error as Error).message}`,
        "parameters",
      );
    }
    if (json === null || typeof json !== "object" || Array.isArray(json)) {
      const got = json === null ? "null" : Array.isArray(json) ? "an array" : typeof json;
      throw enqueueInputError(
        "--parameters",
        `expected a JSON object of {"value": "...", "secret": true|false}, got ${got}`,
        "parameters",
      );
    }
    for (const [name, value] of Object.entries(json)) setOwn(parameters, name, value);
  }
  const add = (pairs: string[] | undefined, secret: boolean, flag: string) => {
    for (const pair of pairs ?? []) {
      const equals = pair.indexOf("=");
      if (equals <= 0) {
        throw enqueueInputError(flag, `expected NAME=VALUE, got "${pair}"`, "parameters");
      }
      setOwn(parameters, pair.slice(0, equals), { value: pair.slice(equals + 1), secret });
    }
  };
  add(flags.parameter, false, "--parameter");
  add(flags.secretParameter, true, "--secret-parameter");
  return parameters;
}

/** Sets a property as data, so a parameter named `__proto__` stays a parameter. */
function setOwn(target: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(target, name, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function wholeNumber(text: string): number {
  if (!/^\s*\d+\s*$/.test(text)) {
    throw enqueueInputError(
      "--restart-count",
      `expected a whole number, got "${text}"`,
      "restart_count",
    );
  }
  return Number(text);
}

function fromIssue(issue: z.core.$ZodIssue): TmlError {
  const field = String(issue.path[0] ?? "");
  // `parameters.x.value: …` reads better as `--parameters: x.value: …`.
  const inner = issue.path.slice(1).map(String).join(".");
  // A bad parameter name is an `invalid_key` issue whose own issues say what is wrong.
  const cause = issue.code === "invalid_key" ? issue.issues[0] ?? issue : issue;
  const message = cause.message.replace(/^Invalid input: /, "");
  return enqueueInputError(
    FLAG_OF_FIELD[field] ?? field,
    inner === "" ? message : `${inner}: ${message}`,
    issue.path.map(String).join("."),
  );
}
