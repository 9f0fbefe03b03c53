/**
 * QemuDriver against real QEMU (software emulation) booting the real test guest, whose real
 * `tml puppet` talks to the driver over virtio-serial: the host driver conformance suite, then
 * what only a VM does (a killed QEMU, a panicking or powered-off guest, the site's start script
 * and QEMU argument template, a boot that never gets ready). Each boot takes several seconds.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "../../lib/testing/asserts.ts";
import { createLogger } from "../../lib/log.ts";
import type { JobSpec } from "../../lib/protocol/supervisor.ts";
import { testGuest } from "../../tests/support/test_guest.ts";
import { uefiGuest } from "../../tests/support/uefi_guest.ts";
import { HostEventLog, testHostDriverConformance } from "./host_driver_conformance.ts";
import { HostStartError, type RunningHost } from "./host_driver.ts";
import { defaultQemuArgs } from "./qemu_args.ts";
import { QemuDriver, type QemuDriverOptions } from "./qemu_driver.ts";

const BOOT_TIMEOUT_MS = 90_000;
const log = createLogger("test:qemu", "warn");
const guest = await testGuest();
/** Warm-start snapshots every driver of this file shares: the guest is snapshotted once. */
const sharedSnapshots = await Deno.makeTempDir({ prefix: "tml-snapshots-" });
globalThis.addEventListener("unload", () => Deno.removeSync(sharedSnapshots, { recursive: true }));

testHostDriverConformance({
  name: "qemu",
  makeDriver: (stateDir) =>
    new QemuDriver({
      stateDir,
      store: guest.store,
      bootTimeoutMs: BOOT_TIMEOUT_MS,
      stopGraceMs: 5_000,
      heartbeatIntervalMs: 1_000,
      snapshotDir: sharedSnapshots,
    }, log),
  imageId: guest.imageId,
  readyTimeoutMs: BOOT_TIMEOUT_MS,
  unsanitized: true,
});

function jobSpec(workload: string | null, imageId = guest.imageId): JobSpec {
  return {
    job_id: crypto.randomUUID(),
    image_id: imageId,
    parameters: { x: { value: "hello from the host", secret: false } },
    ssh_keys: [],
    workload,
    timeout_ms: 600_000,
  };
}

/** The job's QEMU pid, from the pid file QEMU writes soon after start() resolves. */
async function qemuPid(stateDir: string, jobId: string): Promise<number> {
  const deadline = Date.now() + 10_000;
  while (true) {
    const text = await Deno.readTextFile(`${stateDir}/jobs/${jobId}/qemu.pid`).catch(() => "");
    if (text.trim() !== "") return Number(text.trim());
    if (Date.now() > deadline) throw new Error(`QEMU wrote no pid file for job ${jobId}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const qemuTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, sanitizeResources: false, sanitizeOps: false, fn });

qemuTest(
  "QemuDriver reports a killed QEMU as a crashed host",
  () =>
    withDriver({}, async (driver, stateDir) => {
      const events = new HostEventLog();
      const job = jobSpec(null);
      await driver.start(job, events, new AbortController().signal);
      await events.waitFor("ready", BOOT_TIMEOUT_MS);
      // Without exposed ports the VM has no network: nothing to reach.
      assertEquals(driver.hostAddress(job.job_id, 22), undefined);
      const pid = await qemuPid(stateDir, job.job_id);
      Deno.kill(pid, "SIGKILL");
      const { loss } = await events.waitFor("hostLost", 10_000);
      assertEquals(loss.kind, "crashed");
      assertStringIncludes(loss.message, "SIGKILL");
    }),
);

qemuTest(
  "QemuDriver reports a guest kernel panic as a crash, and a poweroff as an exit",
  () =>
    withDriver({}, async (driver) => {
      // One VM after the other: test files run two at a time, and this machine takes two VMs.
      const panicking = new HostEventLog();
      await driver.start(
        jobSpec("echo c > /proc/sysrq-trigger; sleep 60"),
        panicking,
        new AbortController().signal,
      );
      const panic = await panicking.waitFor("hostLost", BOOT_TIMEOUT_MS);
      assertEquals(panic.loss, { kind: "crashed", message: "the guest kernel panicked" });
      const powering = new HostEventLog();
      await driver.start(jobSpec("poweroff -f; sleep 60"), powering, new AbortController().signal);
      const poweroff = await powering.waitFor("hostLost", BOOT_TIMEOUT_MS);
      assertEquals(poweroff.loss.kind, "exited");
      assertStringIncludes(poweroff.loss.message, "exited with code 0");
    }),
);

qemuTest(
  "QemuDriver boots a Treadmill-style UEFI disk image through OVMF",
  async () => {
    const uefi = await uefiGuest();
    await withDriver({ store: uefi.store }, async (driver) => {
      const events = new HostEventLog();
      const workload =
        'test -d /sys/firmware/efi && echo "booted by $(cat /sys/firmware/efi/fw_platform_size)-bit UEFI"';
      await driver.start(jobSpec(workload, uefi.imageId), events, new AbortController().signal);
      const finished = await events.waitFor("workloadFinished", BOOT_TIMEOUT_MS);
      assertEquals(finished.result.outcome, "success", events.outputText);
      assertStringIncludes(events.outputText, "booted by 64-bit UEFI");
    });
  },
);

qemuTest(
  "QemuDriver fills qemu_args from tml's and the start script's variables",
  () =>
    withDriver({
      qemuArgs: [...defaultQemuArgs(), "-name", "guest={vm_name},debug-threads=on"],
      startScript: "START_SCRIPT",
    }, async (driver, stateDir) => {
      const events = new HostEventLog();
      const job = jobSpec("cat /proc/cmdline >/dev/null");
      await driver.start(job, events, new AbortController().signal);
      const pid = await qemuPid(stateDir, job.job_id);
      const cmdline = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
      assert(cmdline.includes(`guest=vm-${job.job_id},debug-threads=on`), cmdline.join(" "));
      const finished = await events.waitFor("workloadFinished", BOOT_TIMEOUT_MS);
      assertEquals(finished.result.outcome, "success");
      // The serial console streams with the workload's output: the guest's init says hello.
      assertStringIncludes(events.outputText, "tml-guest: starting the puppet");
    }, async (stateDir) => {
      const script = `${stateDir}/start.sh`;
      await Deno.writeTextFile(
        script,
        '#!/bin/sh\necho "preparing board"\necho "tml-set-variable:vm_name=vm-$TML_JOB_ID"\n',
        { mode: 0o755 },
      );
      return script;
    }),
);

qemuTest(
  "QemuDriver reports a QEMU that refuses its arguments with QEMU's own words",
  () =>
    withDriver({ qemuArgs: [...defaultQemuArgs(), "-no-such-option"] }, async (driver) => {
      const events = new HostEventLog();
      await driver.start(jobSpec("true"), events, new AbortController().signal);
      const { loss } = await events.waitFor("hostLost", 30_000);
      assertEquals(loss.kind, "crashed");
      assertStringIncludes(loss.message, "before the puppet was ready");
      assertStringIncludes(loss.message, "-no-such-option");
      assertEquals(await driver.listLeftovers(), []);
    }),
);

qemuTest(
  "QemuDriver refuses to start with a template variable nobody sets",
  () =>
    withDriver(
      { qemuArgs: [...defaultQemuArgs(), "-name", "{nobody_sets_this}"] },
      async (driver, stateDir) => {
        const error = await assertRejects(
          () => driver.start(jobSpec(null), new HostEventLog(), new AbortController().signal),
          HostStartError,
        );
        assertStringIncludes(error.message, 'unknown variable "{nobody_sets_this}"');
        assertEquals(await driver.listLeftovers(), []);
        assertEquals([...Deno.readDirSync(`${stateDir}/jobs`)], []);
      },
    ),
);

qemuTest(
  "QemuDriver reports a guest that never gets ready as unresponsive",
  () =>
    // Cold: a resumed VM is ready well within any timeout short enough for a test.
    withDriver({ bootTimeoutMs: 1_500, warmStart: false }, async (driver) => {
      const events = new HostEventLog();
      await driver.start(jobSpec(null), events, new AbortController().signal);
      const { loss } = await events.waitFor("hostLost", 10_000);
      assertEquals(loss.kind, "unresponsive");
      assertStringIncludes(loss.message, "did not report ready within 1500 ms");
      assertEquals(events.indexOf("ready"), -1);
    }),
);

qemuTest(
  "QemuDriver.start() fails with HostStartError when the image is not cached",
  () =>
    withDriver({}, async (driver, stateDir) => {
      const job = jobSpec(null, "0".repeat(64));
      const error = await assertRejects(
        () => driver.start(job, new HostEventLog(), new AbortController().signal),
        HostStartError,
      );
      assertStringIncludes(error.message, `image "${"0".repeat(64)}" is not in the site cache`);
      assert(!await exists(`${stateDir}/jobs/${job.job_id}`));
    }),
);

qemuTest(
  "QemuDriver forwards the exposed ports from free host ports, until the job stops",
  () =>
    withDriver({ exposedPorts: [22] }, async (driver) => {
      const events = new HostEventLog();
      const job = jobSpec(null);
      const host = await driver.start(job, events, new AbortController().signal);
      await events.waitFor("ready", BOOT_TIMEOUT_MS);
      const address = driver.hostAddress(job.job_id, 22);
      assertEquals(address?.hostname, "127.0.0.1");
      // The guest's own SSH server answers there, up before its puppet was ready.
      const conn = await Deno.connect(address!);
      const banner = new Uint8Array(64);
      const count = await conn.read(banner);
      conn.close();
      assertMatch(new TextDecoder().decode(banner.subarray(0, count ?? 0)), /^SSH-2\.0-dropbear/);
      assertEquals(driver.hostAddress(job.job_id, 80), undefined, "port 80 is not exposed");
      assertEquals(driver.hostAddress(crypto.randomUUID(), 22), undefined, "no such job");
      await host.stop("test ended");
      assertEquals(driver.hostAddress(job.job_id, 22), undefined);
      await assertRejects(() => Deno.connect(address!), Deno.errors.ConnectionRefused);
    }),
);

/** The `key=value` lines a workload printed. */
function printed(output: string): Record<string, string> {
  return Object.fromEntries(
    [...output.matchAll(/^(\w+)=(.*?)\r?$/gm)].map(([, key, value]) => [key, value]),
  );
}

qemuTest(
  "QemuDriver resumes each job's VM from a warm-start snapshot, with its own secret, clock and randomness",
  async () => {
    const snapshotDir = await Deno.makeTempDir({ prefix: "tml-snapshots-" });
    try {
      await withDriver({ snapshotDir }, async (driver, stateDir) => {
        const workload = "echo x=$(cat /run/tml/parameters/x); echo now=$(date +%s); " +
          "echo random=$(od -An -tx1 -N16 /dev/urandom | tr -d ' ')";
        const runJob = async (value: string) => {
          const events = new HostEventLog();
          const job = { ...jobSpec(workload), parameters: { x: { value, secret: false } } };
          const startedAt = Date.now() / 1000;
          const host = await driver.start(job, events, new AbortController().signal);
          const finished = await events.waitFor("workloadFinished", BOOT_TIMEOUT_MS);
          const finishedAt = Date.now() / 1000;
          assertEquals(finished.result.outcome, "success", events.outputText);
          await host.stop("test over");
          const progress = events.events.flatMap((event) =>
            event.type === "progress" ? [event.message ?? ""] : []
          );
          return {
            output: printed(events.outputText),
            progress,
            text: events.outputText,
            window: [startedAt, finishedAt],
          };
        };
        const first = await runJob("first");
        assert(first.progress.some((message) => message.includes("booting the image once")));
        assertEquals([...Deno.readDirSync(snapshotDir)].length, 1, "one snapshot");
        // Long enough for a clock left at the snapshot's time to show.
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        const second = await runJob("second");
        assert(!second.progress.some((message) => message.includes("booting the image once")));
        assert(second.progress.some((message) => message.includes("resuming the VM")));
        assertEquals([first.output.x, second.output.x], ["first", "second"]);
        // `date +%s` truncates: the guest's clock is within the job's run, to the second.
        const [from, to] = second.window;
        const guestNow = Number(second.output.now);
        assert(
          guestNow >= Math.floor(from) && guestNow <= to,
          `guest clock ${guestNow}, job ran from ${from} to ${to}`,
        );
        assertStringIncludes(second.text, "clock set, random generator reseeded");
        assertMatch(first.output.random, /^[0-9a-f]{32}$/);
        assert(first.output.random !== second.output.random, "the same random bytes twice");
        assertEquals([...Deno.readDirSync(`${stateDir}/jobs`)], []);
      });
    } finally {
      await Deno.remove(snapshotDir, { recursive: true });
    }
  },
);

qemuTest(
  "QemuDriver discards a warm-start snapshot QEMU cannot load, and the next job makes a new one",
  async () => {
    const snapshotDir = await Deno.makeTempDir({ prefix: "tml-snapshots-" });
    try {
      await withDriver({ snapshotDir }, async (driver) => {
        const first = new HostEventLog();
        await driver.start(jobSpec("true"), first, new AbortController().signal);
        await first.waitFor("workloadFinished", BOOT_TIMEOUT_MS);
        const [snapshot] = [...Deno.readDirSync(snapshotDir)];
        const state = `${snapshotDir}/${snapshot.name}/state`;
        await Deno.truncate(state, (await Deno.stat(state)).size / 2);
        const broken = new HostEventLog();
        await driver.start(jobSpec("true"), broken, new AbortController().signal);
        const { loss } = await broken.waitFor("hostLost", BOOT_TIMEOUT_MS);
        assertEquals(loss.kind, "crashed");
        assertStringIncludes(loss.message, "before the puppet was ready");
        assert(!await exists(`${snapshotDir}/${snapshot.name}`), "the broken snapshot is gone");
        const next = new HostEventLog();
        await driver.start(jobSpec("true"), next, new AbortController().signal);
        assertEquals(
          (await next.waitFor("workloadFinished", BOOT_TIMEOUT_MS)).result.outcome,
          "success",
        );
        assert(await exists(`${snapshotDir}/${snapshot.name}/state`), "a new snapshot");
      });
    } finally {
      await Deno.remove(snapshotDir, { recursive: true });
    }
  },
);

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/**
 * Runs `test` with a driver on a fresh state directory; every host it started is stopped at the
 * end, so a failed assertion never leaves a VM running. `startScript: "START_SCRIPT"` is
 * replaced by the path `makeScript` returns.
 */
async function withDriver(
  options: Partial<QemuDriverOptions>,
  test: (driver: QemuDriver, stateDir: string) => Promise<void>,
  makeScript?: (stateDir: string) => Promise<string>,
) {
  const stateDir = await Deno.makeTempDir({ prefix: "tml-qemu-" });
  const startScript = makeScript === undefined ? options.startScript : await makeScript(stateDir);
  const driver = new QemuDriver({
    stateDir,
    store: guest.store,
    bootTimeoutMs: BOOT_TIMEOUT_MS,
    stopGraceMs: 5_000,
    snapshotDir: sharedSnapshots,
    ...options,
    startScript,
  }, log);
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
    await Promise.all(hosts.map((host) => host.stop("test ended")));
    await driver.cleanupLeftovers();
    await Deno.remove(stateDir, { recursive: true });
  }
}
