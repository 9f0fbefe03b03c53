/**
 * The conformance suite every host driver passes (local now; QEMU and netboot next): it drives
 * a real driver through real jobs and checks the contract written in `host_driver.ts`. A
 * driver's test file calls `testHostDriverConformance` with a way to make the driver.
 *
 * The workloads are plain shell and `tml puppet`, so they run the same on any host with the
 * real puppet in it.
 */
import { createHash } from "node:crypto";
import { assert, assertEquals, assertStringIncludes } from "../../lib/testing/asserts.ts";
import type { JobSpec } from "../../lib/protocol/supervisor.ts";
import {
  type HostDriver,
  type HostEvents,
  type HostLoss,
  HostStartError,
  type RunningHost,
  type WorkloadResult,
} from "./host_driver.ts";

export interface ConformanceSubject {
  /** Names the tests: `<name> host driver: …`. */
  name: string;
  /** A driver keeping its state under `stateDir`; called twice on one directory to test restarts. */
  makeDriver(stateDir: string): HostDriver;
  /** An image the driver can boot. */
  imageId: string;
  /** Time a host may take to become ready. */
  readyTimeoutMs: number;
  /** Skip the suite (e.g. QEMU missing), with the reason. */
  ignore?: string;
  /**
   * Turn Deno's op and resource sanitizers off: a VM's driver ends a host by steps (puppet,
   * power button, QMP) whose last timers and reads settle just after stop() resolves.
   */
  unsanitized?: boolean;
}

export type RecordedEvent =
  | { type: "progress"; subState: string; message?: string }
  | { type: "ready" }
  | { type: "workloadFinished"; result: WorkloadResult }
  | { type: "terminateRequested" }
  | { type: "hostLost"; loss: HostLoss };

/** HostEvents that records what a driver reports, for tests to wait on and inspect. */
export class HostEventLog implements HostEvents {
  readonly events: RecordedEvent[] = [];
  readonly #output: Uint8Array[] = [];
  #waiters: Array<() => void> = [];
  #stoppedAt?: number;
  /** Events that arrived after `markStopped()`: a contract violation. */
  readonly late: string[] = [];

  progress(subState: string, message?: string): void {
    this.#push({ type: "progress", subState, message });
  }
  ready(): void {
    this.#push({ type: "ready" });
  }
  output(bytes: Uint8Array): void {
    if (this.#stoppedAt !== undefined) this.late.push("output");
    this.#output.push(bytes.slice());
    this.#wake();
  }
  workloadFinished(result: WorkloadResult): void {
    this.#push({ type: "workloadFinished", result });
  }
  terminateRequested(): void {
    this.#push({ type: "terminateRequested" });
  }
  hostLost(loss: HostLoss): void {
    this.#push({ type: "hostLost", loss });
  }

  get outputText(): string {
    return new TextDecoder().decode(
      new Uint8Array(this.#output.flatMap((chunk) => [...chunk])),
    );
  }

  /** Records that the host's stop() resolved; any later event is a violation. */
  markStopped(): void {
    this.#stoppedAt = this.events.length;
  }

  /** The first event of `type`, waiting up to `timeoutMs` for it. */
  async waitFor<T extends RecordedEvent["type"]>(
    type: T,
    timeoutMs: number,
  ): Promise<Extract<RecordedEvent, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const found = this.events.find((event) => event.type === type);
      if (found !== undefined) return found as Extract<RecordedEvent, { type: T }>;
      // A lost host sends nothing more, so waiting out the timeout would only hide the reason.
      const lost = this.events.some((event) => event.type === "hostLost");
      const remaining = deadline - Date.now();
      if (remaining <= 0 || lost) {
        throw new Error(
          `No ${type} event ${lost ? "before the host was lost" : `within ${timeoutMs} ms`}; ` +
            `last events ` +
            `${JSON.stringify(this.events.slice(-10))}; ` +
            `output: ${this.outputText}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, remaining);
      });
      clearTimeout(timer);
    }
  }

  /** Waits until the output contains `text`. */
  async waitForOutput(text: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.outputText.includes(text)) {
      if (Date.now() > deadline) throw new Error(`No "${text}" in output: ${this.outputText}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  indexOf(type: RecordedEvent["type"]): number {
    return this.events.findIndex((event) => event.type === type);
  }

  #push(event: RecordedEvent): void {
    if (this.#stoppedAt !== undefined) this.late.push(event.type);
    this.events.push(event);
    this.#wake();
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

const SECRET_VALUE = "jit config\nwith two lines and 'quotes'";

function jobSpec(subject: ConformanceSubject, workload: string | null): JobSpec {
  return {
    job_id: crypto.randomUUID(),
    image_id: subject.imageId,
    parameters: {
      "gh-actions-runner-encoded-jit-config": { value: SECRET_VALUE, secret: true },
      plain: { value: "hello", secret: false },
    },
    ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIConformance conformance@tml"],
    workload,
    timeout_ms: 600_000,
  };
}

export function testHostDriverConformance(subject: ConformanceSubject): void {
  const test = (name: string, fn: (driver: HostDriver, stateDir: string) => Promise<void>) =>
    Deno.test({
      name: `${subject.name} host driver: ${name}`,
      ignore: subject.ignore !== undefined,
      sanitizeOps: subject.unsanitized !== true,
      sanitizeResources: subject.unsanitized !== true,
      async fn() {
        const stateDir = await Deno.makeTempDir({ prefix: "tml-driver-conformance-" });
        try {
          const driver = subject.makeDriver(stateDir);
          await fn(driver, stateDir);
          assertEquals(await driver.listLeftovers(), [], "the job left something behind");
        } finally {
          await Deno.remove(stateDir, { recursive: true }).catch(() => {});
        }
      },
    });
  const ready = subject.readyTimeoutMs;

  /** Starts a job and returns its host and event log. */
  const start = async (driver: HostDriver, workload: string | null) => {
    const events = new HostEventLog();
    const spec = jobSpec(subject, workload);
    const host = await driver.start(spec, events, new AbortController().signal);
    return { spec, events, host };
  };
  const stop = async (host: RunningHost, events: HostEventLog) => {
    await host.stop("conformance test");
    events.markStopped();
  };

  test("start() reports progress then ready, and the workload sees its job files", async (driver) => {
    const { spec, events, host } = await start(
      driver,
      [
        `P="$TML_PARAMETERS_DIR"`,
        `echo "MODE secret $(stat -c %a "$P/gh-actions-runner-encoded-jit-config")"`,
        `echo "MODE plain $(stat -c %a "$P/plain")"`,
        `echo "SHA secret $(sha256sum < "$P/gh-actions-runner-encoded-jit-config" | cut -d' ' -f1)"`,
        `echo "PLAIN $(cat "$P/plain")"`,
        `echo "JOBID $(cat "$P/../job-id") $TML_JOB_ID"`,
      ].join("; "),
    );
    const finished = await events.waitFor("workloadFinished", ready);
    assertEquals(finished.result.outcome, "success");
    assertEquals(finished.result.exit_code, 0);
    const out = events.outputText;
    assertStringIncludes(out, "MODE secret 600\n");
    assertStringIncludes(out, "MODE plain 644\n");
    assertStringIncludes(
      out,
      `SHA secret ${createHash("sha256").update(SECRET_VALUE).digest("hex")}\n`,
    );
    assertStringIncludes(out, "PLAIN hello\n");
    assertStringIncludes(out, `JOBID ${spec.job_id} ${spec.job_id}\n`);
    assert(events.indexOf("progress") >= 0, "no start-up progress reported");
    assert(events.indexOf("progress") < events.indexOf("ready"), "progress after ready");
    assert(events.indexOf("ready") < events.indexOf("workloadFinished"), "result before ready");
    await stop(host, events);
    assertEquals(events.late, []);
  });

  test("a failing workload's exit code becomes an error result", async (driver) => {
    const { events, host } = await start(driver, "echo failing >&2; exit 3");
    const finished = await events.waitFor("workloadFinished", ready);
    assertEquals(finished.result.outcome, "error");
    assertEquals(finished.result.exit_code, 3);
    await events.waitForOutput("failing\n", 5_000);
    await stop(host, events);
  });

  test("a workload reports its own result with tml puppet finish", async (driver) => {
    const { events, host } = await start(
      driver,
      'tml puppet finish --unknown --message "reported by hand" && sleep 60',
    );
    const finished = await events.waitFor("workloadFinished", ready);
    assertEquals(finished.result, { outcome: "unknown", message: "reported by hand" });
    await stop(host, events);
  });

  test("tml puppet terminate asks to end the job", async (driver) => {
    const { events, host } = await start(driver, "tml puppet terminate && sleep 60");
    await events.waitFor("terminateRequested", ready);
    assertEquals(events.indexOf("workloadFinished"), -1);
    await stop(host, events);
  });

  test("a job without a workload becomes ready and waits", async (driver) => {
    const { events, host } = await start(driver, null);
    await events.waitFor("ready", ready);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assertEquals(events.indexOf("workloadFinished"), -1);
    assertEquals(events.indexOf("hostLost"), -1);
    await stop(host, events);
  });

  test("stop() while initializing ends the host before it is ready", async (driver) => {
    const { events, host } = await start(driver, "echo should not run");
    await stop(host, events);
    assertEquals(events.late, []);
    // A VM's console may have shown its first boot messages; the workload never ran.
    assert(!events.outputText.includes("should not run"), events.outputText);
    assertEquals(events.indexOf("ready"), -1);
  });

  test("an abort during start() leaves nothing behind", async (driver) => {
    const events = new HostEventLog();
    const abort = new AbortController();
    const starting = driver.start(jobSpec(subject, "sleep 60"), events, abort.signal);
    abort.abort();
    try {
      await stop(await starting, events);
    } catch (error) {
      assert(error instanceof HostStartError, `start() rejected with ${error}`);
    }
  });

  test("stop() while ready ends the workload, and stop() is idempotent", async (driver) => {
    const { events, host } = await start(driver, "echo started; sleep 600");
    await events.waitFor("ready", ready);
    await events.waitForOutput("started\n", 5_000);
    await Promise.all([host.stop("first"), host.stop("concurrent")]);
    events.markStopped();
    await host.stop("again");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assertEquals(events.late, []);
    assertEquals(events.indexOf("hostLost"), -1, "a requested stop was reported as a loss");
  });

  test(
    "leftovers of a killed supervisor are found and cleaned by the next one",
    async (driver, stateDir) => {
      const { spec, events, host } = await start(driver, "sleep 600");
      await events.waitFor("ready", ready);
      // A second driver on the same state directory stands for the supervisor after a restart.
      const next = subject.makeDriver(stateDir);
      const leftovers = await next.listLeftovers();
      assert(leftovers.length > 0, "nothing listed for a running job of another driver");
      assert(
        leftovers.every((leftover) => leftover.job_id === spec.job_id),
        JSON.stringify(leftovers),
      );
      // Processes may come and go between the two calls; what matters is what is left after.
      assert((await next.cleanupLeftovers()).length > 0, "cleanupLeftovers() removed nothing");
      assertEquals(await next.listLeftovers(), []);
      // The first driver notices its host is gone.
      await events.waitFor("hostLost", 10_000);
      await stop(host, events);
      assertEquals(await next.listLeftovers(), []);
    },
  );
}
