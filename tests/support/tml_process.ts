/**
 * Runs real `tml` processes for end-to-end tests: long-running roles (switchboard, supervisor,
 * image store) with their output captured so a test can wait for a line and grep the logs,
 * and one-shot CLI commands with their exit code, stdout and stderr.
 */

const MAIN_TS = new URL("../../main.ts", import.meta.url).pathname;

export interface TmlRunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `tml ARGS` to completion. */
export async function runTml(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string; cwd?: string } = {},
): Promise<TmlRunResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN_TS, ...args],
    env: { TML_LOG_LEVEL: "info", NO_COLOR: "1", ...options.env },
    cwd: options.cwd,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const output = await child.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A long-running `tml` process whose stdout and stderr are captured as they arrive. */
export class TmlProcess {
  #stdout = "";
  #stderr = "";
  #waiters: Array<() => void> = [];
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<Deno.CommandStatus>;
  readonly #pumps: Promise<void>;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#pumps = Promise.all([
      this.#pump(child.stdout, (text) => (this.#stdout += text)),
      this.#pump(child.stderr, (text) => (this.#stderr += text)),
    ]).then(() => {});
    this.#done = child.status;
  }

  static start(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN_TS, ...args],
      env: { TML_LOG_LEVEL: "info", NO_COLOR: "1", ...options.env },
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new TmlProcess(child);
  }

  get pid(): number {
    return this.#child.pid;
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Resolves with the first match of `pattern` in stdout+stderr; fails after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const match = (this.#stdout + "\n" + this.#stderr).match(pattern);
      if (match !== null) return match;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new Error(
          `Timed out waiting for ${pattern} in process output:\n--- stdout\n${this.#stdout}\n--- stderr\n${this.#stderr}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#waiters.push(resolve)),
        this.#done,
        new Promise((resolve) => (timer = setTimeout(resolve, remaining))),
      ]);
      clearTimeout(timer);
      const status = await Promise.race([this.#done, Promise.resolve(undefined)]);
      if (status !== undefined && (this.#stdout + "\n" + this.#stderr).match(pattern) === null) {
        await this.#pumps;
        throw new Error(
          `Process exited (${status.code}) before printing ${pattern}:\n--- stdout\n${this.#stdout}\n--- stderr\n${this.#stderr}`,
        );
      }
    }
  }

  /** Waits for the process to end on its own, with its output read to the end. */
  async wait(): Promise<Deno.CommandStatus> {
    const status = await this.#done;
    await this.#pumps;
    return status;
  }

  /** Sends a signal and waits for the process to end. */
  async kill(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill(signal);
    } catch {
      // Already exited.
    }
    const status = await this.#done;
    await this.#pumps;
    return status;
  }

  async #pump(stream: ReadableStream<Uint8Array>, append: (text: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      append(decoder.decode(chunk, { stream: true }));
      for (const wake of this.#waiters.splice(0)) wake();
    }
  }
}

/** Starts `tml switchboard serve` on a free port and returns its base URL. */
export async function startSwitchboard(options: {
  dataDir: string;
  databaseUrl?: string;
  args?: string[];
  env?: Record<string, string>;
}): Promise<{ url: string; process: TmlProcess }> {
  const args = ["switchboard", "serve", "--listen", "127.0.0.1:0", "--data-dir", options.dataDir];
  if (options.databaseUrl !== undefined) args.push("--database-url", options.databaseUrl);
  const process = TmlProcess.start([...args, ...(options.args ?? [])], { env: options.env });
  const match = await process.waitFor(/listening on (http:\/\/\S+)/, 60_000);
  return { url: match[1], process };
}

/** A TCP port that was free a moment ago (for a role that must come back on the same port). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
