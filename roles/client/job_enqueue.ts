/**
 * `tml job enqueue`: builds the request from flags exactly as CI scripts write them
 * (`--tag-config`, `--parameters JSON`), adds SSH keys (given ones, else the config's and
 * ~/.ssh/*.pub, plus tml's own key, made once per user), and prints one JSON object with
 * `job_id` on stdout.
 */
import type { Command } from "commander";
import { configDir, loadClientConfig } from "../../lib/client/credentials.ts";
import { note, printJson } from "../../lib/cli/output.ts";
import { TmlError } from "../../lib/errors.ts";
import { JobParameters, SshPublicKey } from "../../lib/protocol/common.ts";
import { formatZodError } from "../../lib/zod_issues.ts";
import { authenticatedClient, globalOptions } from "./session.ts";

export interface EnqueueOptions {
  tagConfig?: string;
  parameters?: string;
  parameter?: string[];
  secretParameter?: string[];
  sshKey?: string[];
  restartCount?: string;
  timeout?: string;
  queueTimeout?: string;
  workload?: string;
}

export async function enqueue(
  imageId: string,
  options: EnqueueOptions,
  command: Command,
): Promise<void> {
  const parameters = parseParameters(options);
  const client = await authenticatedClient(command);
  const sshKeys = await sshKeysFor(options.sshKey, command);
  const restartCount = options.restartCount === undefined
    ? undefined
    : Number(options.restartCount);
  if (restartCount !== undefined && (!Number.isInteger(restartCount) || restartCount < 0)) {
    throw usage("--restart-count: expected a whole number >= 0", "restart_count");
  }
  const job = await client.enqueueJob({
    image_id: imageId,
    tag_config: options.tagConfig ?? "",
    parameters,
    ssh_keys: sshKeys,
    restart_count: restartCount,
    timeout: options.timeout,
    queue_timeout: options.queueTimeout,
    workload: options.workload ?? null,
  });
  if (job.exit_status === "supervisor_match_error") {
    note(
      `tml: warning: job ${job.job_id} ended at once: ${
        job.exit_message ?? "no supervisor matches"
      }`,
    );
  }
  printJson(job);
}

/** `--parameters JSON` plus `--parameter NAME=VALUE` and `--secret-parameter NAME=VALUE`. */
export function parseParameters(options: EnqueueOptions): JobParameters {
  let raw: Record<string, unknown> = {};
  if (options.parameters !== undefined && options.parameters.trim() !== "") {
    try {
      raw = JSON.parse(options.parameters);
    } catch (error) {
      throw usage(
        `--parameters: expected a JSON object: ${(error as Error).message}`,
        "parameters",
      );
    }
  }
  const add = (pairs: string[] | undefined, secret: boolean, flag: string) => {
    for (const pair of pairs ?? []) {
      const equals = pair.indexOf("=");
      if (equals <= 0) throw usage(`${flag}: expected NAME=VALUE, got "${pair}"`, flag.slice(2));
      raw[pair.slice(0, equals)] = { value: pair.slice(equals + 1), secret };
    }
  };
  add(options.parameter, false, "--parameter");
  add(options.secretParameter, true, "--secret-parameter");
  const parsed = JobParameters.safeParse(raw);
  if (!parsed.success) {
    throw usage(formatZodError(parsed.error, "--parameters").split("\n")[0], "parameters");
  }
  return parsed.data;
}

async function sshKeysFor(given: string[] | undefined, command: Command): Promise<string[]> {
  const keys: string[] = [];
  if (given !== undefined && given.length > 0) {
    keys.push(...given);
  } else {
    const config = await loadClientConfig(globalOptions(command));
    keys.push(...(config.ssh_keys ?? []));
    keys.push(...await userPublicKeys());
  }
  const own = await tmlKey();
  if (own !== undefined) keys.push(own);
  const unique = [...new Set(keys.map((key) => key.trim()).filter((key) => key !== ""))];
  for (const key of unique) {
    if (!SshPublicKey.safeParse(key).success) {
      throw usage(
        `--ssh-key: expected one OpenSSH public key line, got "${key.slice(0, 40)}…"`,
        "ssh_keys",
      );
    }
  }
  return unique;
}

async function userPublicKeys(): Promise<string[]> {
  const dir = `${Deno.env.get("HOME") ?? "."}/.ssh`;
  const keys: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && entry.name.endsWith(".pub")) {
        const line = (await Deno.readTextFile(`${dir}/${entry.name}`)).trim();
        if (SshPublicKey.safeParse(line).success) keys.push(line);
      }
    }
  } catch {
    // No ~/.ssh: nothing to add.
  }
  return keys;
}

/** tml's own key for this user, generated on first use so `ssh` into a job works with no setup. */
async function tmlKey(): Promise<string | undefined> {
  const dir = `${configDir()}/ssh`;
  const path = `${dir}/id_ed25519`;
  try {
    return (await Deno.readTextFile(`${path}.pub`)).trim();
  } catch {
    // Not made yet.
  }
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const result = await new Deno.Command("ssh-keygen", {
      args: ["-q", "-t", "ed25519", "-N", "", "-C", "tml", "-f", path],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!result.success) throw new Error(new TextDecoder().decode(result.stderr).trim());
    return (await Deno.readTextFile(`${path}.pub`)).trim();
  } catch (error) {
    note(
      `tml: warning: cannot create tml's SSH key (${
        (error as Error).message
      }); continuing without it`,
    );
    return undefined;
  }
}

function usage(message: string, field: string): TmlError {
  return new TmlError("invalid_input", `Invalid input: ${message}`, { status: 400, field });
}
