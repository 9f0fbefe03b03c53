/**
 * QemuDriver against real QEMU (software emulation) booting the real test guest, whose real
 * `tml puppet` talks to the driver over virtio-serial. Each boot takes several seconds.
 */
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
} from "../../lib/testing/asserts.ts";
import type { JobSpec } from "../../lib/protocol/supervisor.ts";
import { testGuest } from "../../tests/support/test_guest.ts";
import type { HostEvents, HostLoss, RunningHost, WorkloadResult } from "./host_driver.ts";
import { HostStartError } from "./host_driver.ts";
import { QemuDriver } from "./qemu_driver.ts";

const BOOT_TIMEOUT_MS = 90_000;

/** HostEvents that record every call, and can wait for one. */
class RecordedEvents implements HostEvents {
  readonly calls: { event: string; value?: unknown }[] = [];
  readonly output_: Uint8Array[] = [];
  #waiters: (() => void)[] = [];

  progress(subState: string, message?: string): void {
    this.#record("progress", { subState, message });
  }
  ready(): void {
    this.#record("ready");
  }
  output(bytes: Uint8Array): void {
    this.output_.push(bytes);
    this.#record("output");
  }
  workloadFinished(result: WorkloadResult): void {
    this.#record("workloadFinished", result);
  }
  terminateRequested(): void {
    this.#record("terminateRequested");
  }
  hostLost(loss: HostLoss): void {
    this.#record("hostLost", loss);
  }

  get text(): string {
    return new TextDecoder().decode(new Uint8Array(this.output_.flatMap((chunk) => [...chunk])));
  }

  named(event: string): unknown[] {
    return this.calls.filter((call) => call.event === event).map((call) => call.value);
  }

  async waitFor(event: string, timeoutMs = BOOT_TIMEOUT_MS): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    while (this.named(event).length === 0) {
      if (Date.now() > deadline) throw new Error(`no ${event} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 250);
      });
    }
    return this.named(event)[0];
  }

  #record(event: string, value?: unknown): void {
    this.calls.push({ event, value });
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

function jobSpec(imageId: string, workload: string | null): JobSpec {
  return {
    job_id: crypto.randomUUID(),
    image_id: imageId,
    parameters: { x: { value: "hello from the host", secret: false } },
    ssh_keys: [],
    workload,
    timeout_ms: 600_000,
  };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** The guest's serial console, for failure messages. */
async function consoleOf(dir: string): Promise<string> {
  return (await Deno.readTextFile(`${dir}/console.log`).catch(() => "")).slice(-3_000);
}

async function alive(pid: number): Promise<boolean> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => undefined);
  return stat !== undefined && !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
}

async function withDriver(test: (driver: QemuDriver, stateDir: string) => Promise<void>) {
  const guest = await testGuest();
  const stateDir = await Deno.makeTempDir({ prefix: "tml-qemu-" });
  const driver = new QemuDriver({ stateDir, store: guest.store, bootTimeoutMs: BOOT_TIMEOUT_MS });
  // A failed assertion must not leave a VM running: every host started is stopped at the end.
  const hosts: RunningHost[] = [];
  const start = driver.start.bind(driver);
  driver.start = async (...args) => {
    const host = await start(...args);
    hosts.push(host);
    return host;
  };
  try {
    await test(driver, stateDir);
  } finally {
    for (const host of hosts) await host.stop("test ended");
    await driver.cleanupLeftovers();
    await Deno.remove(stateDir, { recursive: true });
  }
}

Deno.test({
  name: "QemuDriver.start() boots the guest, runs the workload and stop() removes the VM",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withDriver(async (driver, stateDir) => {
      const guest = await testGuest();
      const events = new RecordedEvents();
      const job = jobSpec(guest.imageId, "cat /run/tml/parameters/x; exit 3");
      const started = performance.now();
      const host = await driver.start(job, events, new AbortController().signal);
      console.log(`boot to ready: ${Math.round(performance.now() - started)} ms`);
      assertEquals(events.named("ready").length, 1);
      assertEquals(
        events.named("progress").map((value) => (value as { subState: string }).subState),
        ["allocating", "booting"],
      );
      const dir = `${stateDir}/jobs/${job.job_id}`;
      const result = await events.waitFor("workloadFinished").catch(async (error) => {
        throw new Error(`${error.message}; console: ${await consoleOf(dir)}`);
      }) as WorkloadResult;
      assertEquals(result.outcome, "error");
      assertEquals(result.exit_code, 3);
      assertStringIncludes(events.text, "hello from the host");

      const pid = Number(await Deno.readTextFile(`${dir}/qemu.pid`));
      assert(await alive(pid), "QEMU runs while the job does");
      const stopping = performance.now();
      await host.stop("test done");
      console.log(`stop: ${Math.round(performance.now() - stopping)} ms`);
      assert(!await alive(pid), "QEMU is gone after stop");
      assert(!await exists(dir), "the job directory is removed");
      assertEquals(events.named("hostLost"), []);
    }),
});

Deno.test({
  name: "QemuDriver reports a killed QEMU as a lost host",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withDriver(async (driver, stateDir) => {
      const guest = await testGuest();
      const events = new RecordedEvents();
      const job = jobSpec(guest.imageId, null);
      const host = await driver.start(job, events, new AbortController().signal);
      const dir = `${stateDir}/jobs/${job.job_id}`;
      const pid = Number(await Deno.readTextFile(`${dir}/qemu.pid`));
      Deno.kill(pid, "SIGKILL");
      const loss = await events.waitFor("hostLost", 10_000) as HostLoss;
      assertEquals(loss.kind, "crashed");
      assertStringIncludes(loss.message, "SIGKILL");
      await host.stop("test done");
      assert(!await exists(dir), "the job directory is removed");
    }),
});

Deno.test({
  name: "QemuDriver.cleanupLeftovers() ends the VMs another driver left behind",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withDriver(async (driver, stateDir) => {
      const guest = await testGuest();
      const job = jobSpec(guest.imageId, null);
      const host = await driver.start(job, new RecordedEvents(), new AbortController().signal);
      const dir = `${stateDir}/jobs/${job.job_id}`;
      const pid = Number(await Deno.readTextFile(`${dir}/qemu.pid`));
      // A restarted supervisor: a new driver on the same state directory.
      const restarted = new QemuDriver({ stateDir, store: guest.store });
      const leftovers = await restarted.cleanupLeftovers();
      assertEquals(
        leftovers.map((leftover) => leftover.description).sort(),
        [`directory ${dir}`, `process ${pid}`],
      );
      assert(!await alive(pid), "the leftover QEMU is gone");
      assert(!await exists(dir), "the leftover directory is removed");
      await host.stop("test done");
    }),
});

Deno.test("QemuDriver.start() fails with HostStartError when the image is not cached", () =>
  withDriver(async (driver, stateDir) => {
    const job = jobSpec("0".repeat(64), null);
    const error = await assertRejects(
      () => driver.start(job, new RecordedEvents(), new AbortController().signal),
      HostStartError,
    );
    assertStringIncludes(error.message, `image "${"0".repeat(64)}" is not in the site cache`);
    assert(!await exists(`${stateDir}/jobs/${job.job_id}`));
  }));
