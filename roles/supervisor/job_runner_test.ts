import { assert, assertEquals } from "../../lib/testing/asserts.ts";
import { createLogger } from "../../lib/log.ts";
import type { JobSpec } from "../../lib/protocol/supervisor.ts";
import {
  type HostDriver,
  type HostEvents,
  HostStartError,
  type RunningHost,
} from "./host_driver.ts";
import { type JobReport, JobRunner } from "./job_runner.ts";

const log = createLogger("test:runner", "error");

/** A driver the test steers by hand: it hands out each start's events and records stops. */
class SteeredDriver implements HostDriver {
  readonly name = "steered";
  events?: HostEvents;
  signal?: AbortSignal;
  stops: string[] = [];
  /** What start() does after recording its arguments. */
  onStart: (events: HostEvents) => Promise<void> = () => Promise.resolve();

  async start(_job: JobSpec, events: HostEvents, signal: AbortSignal): Promise<RunningHost> {
    this.events = events;
    this.signal = signal;
    await this.onStart(events);
    return { stop: (reason) => Promise.resolve(void this.stops.push(reason)) };
  }
  listLeftovers() {
    return Promise.resolve([]);
  }
  cleanupLeftovers() {
    return Promise.resolve([]);
  }
}

function setUp() {
  const driver = new SteeredDriver();
  const updates: Array<Omit<JobReport, "job_id">> = [];
  const consoles: Array<[number, string]> = [];
  const runner = new JobRunner(driver, {
    report: ({ job_id: _, ...update }) => {
      // Keep only what was given, as it would go on the wire.
      updates.push(JSON.parse(JSON.stringify(update)));
    },
    console: (_jobId, offset, bytes) => consoles.push([offset, new TextDecoder().decode(bytes)]),
  }, log);
  return { driver, updates, consoles, runner };
}

function spec(jobId = crypto.randomUUID()): JobSpec {
  return {
    job_id: jobId,
    image_id: "a".repeat(64),
    parameters: {},
    ssh_keys: [],
    workload: "true",
    timeout_ms: 60_000,
  };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  assert(condition(), "condition not reached");
}

const terminated = (updates: Array<{ state?: string }>) => () =>
  updates.some((update) => update.state === "terminated");

Deno.test("JobRunner.start() reports initializing, progress, ready, then the result with terminating and terminated", async () => {
  const { driver, updates, runner } = setUp();
  driver.onStart = (events) => Promise.resolve(events.progress("booting", "starting the VM"));
  const job = spec();
  assertEquals(runner.start(job), { ok: true });
  await until(() => driver.events !== undefined);
  driver.events!.ready();
  driver.events!.ready(); // A restarted puppet says it again.
  driver.events!.workloadFinished({ outcome: "error", exit_code: 3 });
  await until(terminated(updates));
  assertEquals(updates, [
    { state: "initializing", sub_state: null },
    { state: "initializing", sub_state: "booting", message: "starting the VM" },
    { state: "ready", sub_state: null },
    {
      state: "terminating",
      sub_state: "shutting_down",
      exit_status: "workload_finished_error",
      message: "exit code 3",
    },
    { state: "terminated", sub_state: null },
  ]);
  assertEquals(driver.stops, ["the workload finished"]);
  assertEquals(runner.heldJobs(), []);
});

Deno.test("JobRunner ends a job whose host fails to start with supervisor_host_start_error", async () => {
  const { driver, updates, runner } = setUp();
  driver.onStart = () =>
    Promise.reject(new HostStartError("Cannot fetch image: 404 from the store"));
  runner.start(spec());
  await until(terminated(updates));
  assertEquals(updates.slice(1), [
    {
      state: "terminating",
      sub_state: "shutting_down",
      exit_status: "supervisor_host_start_error",
      message: "Cannot fetch image: 404 from the store",
    },
    { state: "terminated", sub_state: null },
  ]);
  assertEquals(runner.heldJobs(), []);
});

Deno.test("JobRunner reports an unexpected driver failure as internal_supervisor_error", async () => {
  const { driver, updates, runner } = setUp();
  driver.onStart = () => Promise.reject(new TypeError("undefined is not a function"));
  runner.start(spec());
  await until(terminated(updates));
  assertEquals(updates[1].exit_status, "internal_supervisor_error");
  assertEquals(updates[1].message, "Cannot start the host: undefined is not a function");
});

Deno.test("JobRunner.stop() during start aborts it, stops the host and sends no exit status", async () => {
  const { driver, updates, runner } = setUp();
  let release!: () => void;
  driver.onStart = () => new Promise<void>((resolve) => (release = resolve));
  const job = spec();
  runner.start(job);
  await until(() => driver.signal !== undefined);
  const stopping = runner.stop(job.job_id, "canceled");
  assert(driver.signal!.aborted, "start() was not told to stop");
  release(); // This driver finishes starting anyway; the runner must still stop the host.
  await stopping;
  assertEquals(updates.map((update) => update.state), [
    "initializing",
    "terminating",
    "terminated",
  ]);
  assert(updates.every((update) => update.exit_status === undefined));
  assertEquals(driver.stops, ["stop_job: canceled"]);
  // Events from the host after the stop change nothing.
  driver.events!.ready();
  driver.events!.workloadFinished({ outcome: "success" });
  await new Promise((resolve) => setTimeout(resolve, 10));
  assertEquals(updates.length, 3);
});

Deno.test("JobRunner.start() is idempotent for its job and refuses another while busy", async () => {
  const { driver, updates, runner } = setUp();
  const job = spec();
  assertEquals(runner.start(job), { ok: true });
  assertEquals(runner.start(job), { ok: true });
  const other = spec();
  const refused = runner.start(other);
  assert(!refused.ok && refused.message.includes(job.job_id), JSON.stringify(refused));
  assertEquals(runner.heldJobs(), [{ job_id: job.job_id, state: "initializing", sub_state: null }]);
  await until(() => driver.events !== undefined);
  await runner.stop(job.job_id, "canceled");
  await runner.stop(job.job_id, "canceled"); // Already gone: nothing happens.
  assertEquals(updates.filter((update) => update.state === "terminated").length, 1);
  assertEquals(runner.start(other), { ok: true });
});

Deno.test("JobRunner maps a lost host to the status for where the job was", async () => {
  const cases = [
    { ready: false, kind: "crashed", status: "supervisor_host_start_error" },
    { ready: true, kind: "exited", status: "workload_finished_unknown" },
    { ready: true, kind: "crashed", status: "workload_finished_error" },
    { ready: true, kind: "unresponsive", status: "workload_finished_error" },
  ] as const;
  for (const { ready, kind, status } of cases) {
    const { driver, updates, runner } = setUp();
    runner.start(spec());
    await until(() => driver.events !== undefined);
    if (ready) driver.events!.ready();
    driver.events!.hostLost({ kind, message: "it went away" });
    await until(terminated(updates));
    const ending = updates.find((update) => update.state === "terminating")!;
    assertEquals(ending.exit_status, status, `${kind} when ready=${ready}`);
    assert(ending.message!.includes("it went away"));
  }
});

Deno.test("JobRunner keeps the first result: a terminate request after it changes nothing", async () => {
  const { driver, updates, runner } = setUp();
  runner.start(spec());
  await until(() => driver.events !== undefined);
  driver.events!.ready();
  driver.events!.terminateRequested();
  driver.events!.workloadFinished({ outcome: "success", exit_code: 0 });
  await until(terminated(updates));
  const statuses = updates.filter((update) => update.exit_status !== undefined);
  assertEquals(statuses.map((update) => update.exit_status), ["workload_finished_unknown"]);
  assertEquals(driver.stops.length, 1);
});

Deno.test("JobRunner numbers console bytes by their offset in the job's console", async () => {
  const { driver, consoles, runner } = setUp();
  const job = spec();
  runner.start(job);
  await until(() => driver.events !== undefined);
  driver.events!.output(new TextEncoder().encode("héllo "));
  driver.events!.output(new Uint8Array());
  driver.events!.output(new TextEncoder().encode("world\n"));
  assertEquals(consoles, [[0, "héllo "], [7, "world\n"]]);
  await runner.stop(job.job_id, "canceled");
});

Deno.test("JobRunner.shutdown() ends the running job as internal_supervisor_error", async () => {
  const { driver, updates, runner } = setUp();
  runner.start(spec());
  await until(() => driver.events !== undefined);
  driver.events!.ready();
  await runner.shutdown();
  const ending = updates.find((update) => update.state === "terminating")!;
  assertEquals(ending.exit_status, "internal_supervisor_error");
  assertEquals(updates.at(-1)!.state, "terminated");
  assertEquals(driver.stops, ["supervisor shutdown"]);
  await runner.shutdown(); // Nothing running: nothing happens.
  assertEquals(driver.stops.length, 1);
});
