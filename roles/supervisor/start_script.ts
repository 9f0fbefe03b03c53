/**
 * The site's per-job start script (`start_script`, as in Treadmill): run before the VM starts,
 * it prepares the board (power, USB) and passes values to the QEMU template by printing
 * `tml-set-variable:KEY=VALUE` lines, e.g. the board's USB bus and address for `usb-host`.
 */
import type { Logger } from "../../lib/log.ts";
import { HostStartError } from "./host_driver.ts";
import { TEMPLATE_NAME } from "./qemu_args.ts";

const SET_VARIABLE = "tml-set-variable:";
/** A script that takes longer than this is ended and the job fails to start. */
const START_SCRIPT_TIMEOUT_MS = 120_000;

export interface StartScriptRun {
  script: string;
  env: Record<string, string>;
  signal: AbortSignal;
  log: Logger;
  timeoutMs?: number;
}

/** Runs the script and returns the variables it set. */
export async function runStartScript(run: StartScriptRun): Promise<Record<string, string>> {
  const timeoutMs = run.timeoutMs ?? START_SCRIPT_TIMEOUT_MS;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(run.script, {
      env: run.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      // Its own process group, so ending it also ends what it started (and closes our pipes).
      detached: true,
    }).spawn();
  } catch (error) {
    throw new HostStartError(
      `Cannot run start_script "${run.script}": ${(error as Error).message}`,
      error,
    );
  }
  let timedOut = false;
  const end = () => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch {
      // Already ended.
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    end();
  }, timeoutMs);
  run.signal.addEventListener("abort", end, { once: true });
  const output = await child.output().finally(() => {
    clearTimeout(timer);
    run.signal.removeEventListener("abort", end);
  });
  const stderr = new TextDecoder().decode(output.stderr).trim().slice(-2_000);
  if (!output.success) {
    const how = timedOut
      ? `did not finish within ${timeoutMs} ms`
      : run.signal.aborted
      ? "was ended: the job was stopped"
      : output.signal !== null
      ? `was killed by ${output.signal}`
      : `exited with code ${output.code}`;
    throw new HostStartError(
      `Cannot start a VM: start_script "${run.script}" ${how}${stderr ? `: ${stderr}` : ""}`,
    );
  }
  const variables: Record<string, string> = {};
  for (const line of new TextDecoder().decode(output.stdout).split("\n")) {
    if (!line.startsWith(SET_VARIABLE)) {
      if (line.trim() !== "") run.log.debug("start_script", { line });
      continue;
    }
    const assignment = line.slice(SET_VARIABLE.length);
    const equals = assignment.indexOf("=");
    const key = assignment.slice(0, equals);
    if (equals < 0 || !TEMPLATE_NAME.test(key)) {
      throw new HostStartError(
        `Cannot start a VM: start_script "${run.script}" printed "${line}"; expected ` +
          `${SET_VARIABLE}KEY=VALUE with KEY of lowercase letters, digits and _`,
      );
    }
    variables[key] = assignment.slice(equals + 1);
  }
  return variables;
}
