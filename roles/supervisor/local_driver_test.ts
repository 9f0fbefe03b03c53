import { assert, assertEquals } from "../../lib/testing/asserts.ts";
import { createLogger } from "../../lib/log.ts";
import { HostEventLog, testHostDriverConformance } from "./host_driver_conformance.ts";
import { LocalDriver } from "./local_driver.ts";
import { findMarkedProcesses } from "./process_marks.ts";

const log = createLogger("test:local", "warn");
const IMAGE_ID = "0".repeat(64);

testHostDriverConformance({
  name: "local",
  makeDriver: (stateDir) =>
    new LocalDriver({ stateDir, stopGraceMs: 500, heartbeatIntervalMs: 500 }, log),
  imageId: IMAGE_ID,
  readyTimeoutMs: 30_000,
});

Deno.test("LocalDriver reports a puppet that never gets ready as unresponsive", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "tml-local-driver-" });
  try {
    // 1 ms is less than any puppet needs to start.
    const driver = new LocalDriver({ stateDir, readyTimeoutMs: 1 }, log);
    const events = new HostEventLog();
    const host = await driver.start(
      {
        job_id: crypto.randomUUID(),
        image_id: IMAGE_ID,
        parameters: {},
        ssh_keys: [],
        workload: null,
        timeout_ms: 60_000,
      },
      events,
      new AbortController().signal,
    );
    const lost = await events.waitFor("hostLost", 5_000);
    assertEquals(lost.loss.kind, "unresponsive");
    await host.stop("test");
    assertEquals(await driver.listLeftovers(), []);
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});

Deno.test("LocalDriver reports a killed puppet as a crash with what it last said", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "tml-local-driver-" });
  try {
    const driver = new LocalDriver({ stateDir }, log);
    const events = new HostEventLog();
    const jobId = crypto.randomUUID();
    const host = await driver.start(
      {
        job_id: jobId,
        image_id: IMAGE_ID,
        parameters: {},
        ssh_keys: [],
        workload: "sleep 600",
        timeout_ms: 60_000,
      },
      events,
      new AbortController().signal,
    );
    await events.waitFor("ready", 30_000);
    const puppets = [];
    for (const { pid } of await findMarkedProcesses((mark) => mark.endsWith(jobId))) {
      const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
      if (cmdline.split("\0").includes("puppet")) puppets.push(pid);
    }
    const pid = puppets[0] ?? 0;
    assert(pid > 0, "the puppet process was not found");
    Deno.kill(pid, "SIGKILL");
    const lost = await events.waitFor("hostLost", 10_000);
    assertEquals(lost.loss.kind, "crashed");
    assert(lost.loss.message.includes("SIGKILL"), lost.loss.message);
    await host.stop("test");
    assertEquals(await driver.listLeftovers(), [], "the workload outlived its puppet");
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});
