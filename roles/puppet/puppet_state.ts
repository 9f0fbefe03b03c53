/**
 * The puppet's own state under its root, so that a restarted puppet picks up where it was
 * instead of running the workload twice. This module is the only one that knows the layout:
 *
 *   <root>/.puppet/            mode 0700
 *     job-id                   the job this state belongs to; another job id starts afresh
 *     workload.pid             pid (and process group) of the workload's wrapper shell
 *     stdout.log, stderr.log   the workload's output, appended by the workload itself
 *     exit-code                written by the wrapper shell when the workload ends
 *     result.json              the result reported (the workload's, or `tml puppet finish`)
 *     bin/tml                  runs this same tml, for workloads where no `tml` is installed
 *
 * The workload writes its output to files rather than to pipes held by the puppet, so it keeps
 * running, and keeps its output, while the puppet restarts.
 */
import { z } from "zod";
import { WorkloadFinished } from "../../lib/protocol/puppet.ts";

const StoredResult = WorkloadFinished.omit({ type: true });
export type WorkloadResult = z.infer<typeof StoredResult>;

export class PuppetState {
  private constructor(readonly dir: string) {}

  /** Opens the state of `jobId` under `root`, discarding state left by another job. */
  static async open(root: string, jobId: string): Promise<PuppetState> {
    const dir = `${root}/.puppet`;
    const previous = await Deno.readTextFile(`${dir}/job-id`).catch(() => undefined);
    if (previous?.trim() !== jobId) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      await Deno.writeTextFile(`${dir}/job-id`, jobId);
    }
    return new PuppetState(dir);
  }

  outputPath(stream: "stdout" | "stderr"): string {
    return `${this.dir}/${stream}.log`;
  }

  get exitCodePath(): string {
    return `${this.dir}/exit-code`;
  }

  /**
   * Writes `bin/tml`, a script that runs the tml this puppet runs (same runtime, same entry
   * point), and returns its directory for the workload's PATH.
   */
  async writeTmlShim(): Promise<string> {
    const bin = `${this.dir}/bin`;
    await Deno.mkdir(bin, { recursive: true });
    const quote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;
    const entry = new URL(Deno.mainModule).pathname;
    await Deno.writeTextFile(
      `${bin}/tml`,
      `#!/bin/sh\nexec ${quote(Deno.execPath())} run -A ${quote(entry)} "$@"\n`,
      { mode: 0o755 },
    );
    return bin;
  }

  async readWorkloadPid(): Promise<number | undefined> {
    const text = await Deno.readTextFile(`${this.dir}/workload.pid`).catch(() => undefined);
    const pid = Number(text);
    return text !== undefined && Number.isInteger(pid) && pid > 1 ? pid : undefined;
  }

  async writeWorkloadPid(pid: number): Promise<void> {
    await Deno.writeTextFile(`${this.dir}/workload.pid`, String(pid));
  }

  /** The workload's exit code as its wrapper shell recorded it, if it has ended. */
  async readExitCode(): Promise<number | undefined> {
    const text = await Deno.readTextFile(this.exitCodePath).catch(() => undefined);
    const code = Number(text?.trim());
    return text !== undefined && Number.isInteger(code) ? code : undefined;
  }

  async readResult(): Promise<WorkloadResult | undefined> {
    const text = await Deno.readTextFile(`${this.dir}/result.json`).catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      const parsed = StoredResult.safeParse(JSON.parse(text));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  async writeResult(result: WorkloadResult): Promise<void> {
    const temporary = `${this.dir}/result.json.tmp`;
    await Deno.writeTextFile(temporary, JSON.stringify(result));
    await Deno.rename(temporary, `${this.dir}/result.json`);
  }
}
