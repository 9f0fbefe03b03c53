/**
 * The QEMU supervisor end to end, every part real: a switchboard on PostgreSQL, a
 * `tml image-store serve` holding the test guest (pushed with `tml image push`), and a
 * `tml supervisor qemu` process that fetches it into its site cache and boots a VM per job
 * under software emulation, with the real puppet inside. Jobs go in through the CLI as a CI
 * script would enqueue them. Boots take several seconds each; the steps share one testbed.
 */
import { assert, assertEquals, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { blobPath } from "../../lib/store/layout.ts";
import {
  api,
  createUser,
  registerSupervisor,
  type Spine,
  startSpine,
  waitForJob,
} from "../support/spine.ts";
import { runTml, TmlProcess } from "../support/tml_process.ts";
import { testGuest } from "../support/test_guest.ts";
import {
  pushImage,
  qemuProcessesOf,
  startQemuSupervisor as startSupervisorProcess,
} from "../support/qemu_supervisor.ts";
import { type RunningStore, startImageStore } from "../image_store/store_harness.ts";
import { startValveProxy, type ValveProxy } from "../support/valve_proxy.ts";
import type { TestGuest } from "../../images/test_guest/build.ts";
import { createHash } from "node:crypto";

const BOOT_MS = 120_000;
const SECRET = `s3cret-${crypto.randomUUID()}`;

interface Testbed {
  spine: Spine;
  store: RunningStore;
  /** The supervisor reaches the store through it, so a test can stall a fetch. */
  valve: ValveProxy;
  imageId: string;
  token: string;
  dir: string;
  supervisorId: string;
  supervisorToken: string;
  supervisor?: TmlProcess;
}

function startQemuSupervisor(bed: Testbed): Promise<TmlProcess> {
  return startSupervisorProcess({
    switchboard: bed.spine.url,
    imageStore: bed.valve.url,
    supervisorId: bed.supervisorId,
    token: bed.supervisorToken,
    dir: bed.dir,
  });
}

/** `tml ARGS` as the job's owner would run it; fails the test unless it exits `expectCode`. */
async function tml(bed: Testbed, args: string[], expectCode = 0): Promise<string> {
  const result = await runTml(args, {
    env: { TML_API_URL: bed.spine.url, TML_API_TOKEN: bed.token, HOME: bed.dir },
  });
  assertEquals(result.code, expectCode, `tml ${args.join(" ")}:\n${result.stderr}`);
  return result.stdout;
}

async function enqueue(bed: Testbed, extra: string[]): Promise<string> {
  const out = await tml(bed, ["job", "enqueue", bed.imageId, "--tag-config", "vm:qemu", ...extra]);
  return JSON.parse(out).job_id;
}

function terminated(bed: Testbed, jobId: string): Promise<Record<string, unknown>> {
  return waitForJob(bed.spine, bed.token, jobId, (job) => job.state === "terminated", BOOT_MS);
}

async function jobDirectories(bed: Testbed): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(`${bed.dir}/supervisor/jobs`)) names.push(entry.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return names;
}

/** No VM runs and no job directory remains. */
async function assertNothingLeft(bed: Testbed): Promise<void> {
  assertEquals(await qemuProcessesOf(bed.dir), [], "a QEMU process outlived its job");
  assertEquals(await jobDirectories(bed), [], "a job directory outlived its job");
}

/** The blob's file in the supervisor's site cache, when it is there. */
async function siteCacheBlob(bed: Testbed, digest: string): Promise<string | undefined> {
  const file = `${bed.dir}/supervisor/images/${blobPath(digest)}`;
  return await Deno.stat(file).then(() => file, () => undefined);
}

async function smallestBlob(guest: TestGuest): Promise<string> {
  const manifest = await guest.store.readManifest(guest.imageId);
  return Object.values(manifest!.blobs).sort((a, b) => a.size - b.size)[0].sha256;
}

/** Damages a stored file in place, as a failing disk would. */
async function flipAByte(file: string): Promise<void> {
  const bytes = await Deno.readFile(file);
  bytes[bytes.length >> 1] ^= 0xff;
  await Deno.chmod(file, 0o644);
  await Deno.writeFile(file, bytes);
}

Deno.test({
  name: "tml supervisor qemu runs CLI-enqueued jobs in VMs booted from the image store",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const guest = await testGuest();
    const dir = await Deno.makeTempDir({ prefix: "tml-qemu-e2e-" });
    const store = await startImageStore(`${dir}/store`);
    const spine = await startSpine(["--image-store-url", store.url]);
    const user = await createUser(spine, "qemu-user", ["submit_job", "run_job_on_supervisor:*"]);
    const registered = await registerSupervisor(spine, "qemu-1", ["vm:qemu"]);
    const storeAddress = new URL(store.url);
    const bed: Testbed = {
      spine,
      store,
      valve: startValveProxy({
        hostname: storeAddress.hostname,
        port: Number(storeAddress.port),
      }),
      imageId: guest.imageId,
      token: user.token,
      dir,
      supervisorId: registered.supervisorId,
      supervisorToken: registered.token,
    };
    try {
      await pushImage(guest, store);
      bed.supervisor = await startQemuSupervisor(bed);

      await t.step("a workload with parameters succeeds; its output is the job's log", async () => {
        const jobId = await enqueue(bed, [
          "--parameters",
          JSON.stringify({ greeting: { value: "hello from CI", secret: false } }),
          "--secret-parameter",
          `token=${SECRET}`,
          "--workload",
          'P=$TML_PARAMETERS_DIR; echo "GREETING $(cat $P/greeting)"; ' +
          'echo "MODES $(stat -c %a $P/greeting) $(stat -c %a $P/token)"; ' +
          'echo "SECRET SHA $(sha256sum < $P/token | cut -d" " -f1)"; echo "LEAK $(cat $P/token)"',
        ]);
        const waited = JSON.parse(await tml(bed, ["job", "wait", jobId, "--timeout", "3m"]));
        assertEquals(waited.exit_status, "workload_finished_success", JSON.stringify(waited));

        const logs = await tml(bed, ["job", "logs", jobId]);
        assertStringIncludes(logs, "GREETING hello from CI\n");
        assertStringIncludes(logs, "MODES 644 600\n");
        const secretSha = createHash("sha256").update(SECRET).digest("hex");
        assertStringIncludes(logs, `SECRET SHA ${secretSha}\n`);
        assertStringIncludes(logs, "LEAK [redacted]");
        // The VM's own console (the guest's init), not only the workload's output.
        assertStringIncludes(logs, "tml-guest: the puppet exited with status 0");
        assertEquals(logs.split("GREETING").length, 2, "the workload's output came twice");
        assert(!logs.includes(SECRET), "the secret reached the job's log");
        assert(
          !bed.supervisor!.stdout.includes(SECRET) && !bed.supervisor!.stderr.includes(SECRET),
        );

        const history = (await api(spine, bed.token, "GET", `/jobs/${jobId}/history`)).body as {
          events: Array<{ state: string | null; sub_state?: string | null }>;
        };
        const subStates = history.events.map((event) => event.sub_state).filter(Boolean);
        for (const expected of ["fetching_image", "allocating", "booting"]) {
          assert(subStates.includes(expected), `no ${expected} in ${JSON.stringify(subStates)}`);
        }
        await assertNothingLeft(bed);
      });

      await t.step("a failing workload ends the job with workload_finished_error", async () => {
        const jobId = await enqueue(bed, ["--workload", "echo about to fail; exit 7"]);
        const final = await terminated(bed, jobId);
        assertEquals(final.exit_status, "workload_finished_error");
        assertStringIncludes(String(final.exit_message), "7");
      });

      await t.step("cancel while booting ends the VM and leaves nothing", async () => {
        const jobId = await enqueue(bed, ["--workload", "true"]);
        await waitForJob(spine, bed.token, jobId, (job) => job.sub_state === "booting", BOOT_MS);
        await tml(bed, ["job", "cancel", jobId]);
        assertEquals((await terminated(bed, jobId)).exit_status, "job_canceled");
        await assertNothingLeft(bed);
      });

      await t.step("cancel of a ready job powers the VM off and leaves nothing", async () => {
        const jobId = await enqueue(bed, []);
        await waitForJob(spine, bed.token, jobId, (job) => job.state === "ready", BOOT_MS);
        assertEquals((await qemuProcessesOf(dir)).length, 1);
        await tml(bed, ["job", "cancel", jobId]);
        assertEquals((await terminated(bed, jobId)).exit_status, "job_canceled");
        await assertNothingLeft(bed);
      });

      await t.step("a job that outlives its timeout ends with job_timeout", async () => {
        const jobId = await enqueue(bed, ["--timeout", "25s", "--workload", "sleep 600"]);
        assertEquals((await terminated(bed, jobId)).exit_status, "job_timeout");
        await assertNothingLeft(bed);
      });

      await t.step(
        "a guest that powers itself off, and one that panics, end their jobs",
        async () => {
          const off = await enqueue(bed, ["--workload", "poweroff -f; sleep 60"]);
          const offFinal = await terminated(bed, off);
          assertEquals(offFinal.exit_status, "workload_finished_unknown");
          assertStringIncludes(String(offFinal.exit_message), "exited with code 0");
          const panic = await enqueue(bed, [
            "--workload",
            "echo c > /proc/sysrq-trigger; sleep 60",
          ]);
          const panicFinal = await terminated(bed, panic);
          assertEquals(panicFinal.exit_status, "workload_finished_error");
          assertStringIncludes(String(panicFinal.exit_message), "the guest kernel panicked");
          await assertNothingLeft(bed);
        },
      );

      await t.step("a supervisor killed with -9 ends its VM when it comes back", async () => {
        const jobId = await enqueue(bed, []);
        await waitForJob(spine, bed.token, jobId, (job) => job.state === "ready", BOOT_MS);
        const [vm] = await qemuProcessesOf(dir);
        assert(vm !== undefined, "no QEMU process while the job is ready");
        await bed.supervisor!.kill("SIGKILL");
        bed.supervisor = await startQemuSupervisor(bed);
        await bed.supervisor.waitFor(/removed a leftover/, 30_000);
        await assertNothingLeft(bed);
        const final = await terminated(bed, jobId);
        assertEquals(final.exit_status, "supervisor_dropped_job", JSON.stringify(final));
      });

      await t.step("cancel while fetching the image leaves no partial blob", async () => {
        await bed.supervisor!.kill();
        await Deno.remove(`${dir}/supervisor/images`, { recursive: true });
        bed.supervisor = await startQemuSupervisor(bed);
        bed.valve.close();
        try {
          const jobId = await enqueue(bed, ["--workload", "true"]);
          await waitForJob(spine, bed.token, jobId, (job) => job.sub_state === "fetching_image");
          await new Promise((resolve) => setTimeout(resolve, 500)); // Let some bytes land.
          await tml(bed, ["job", "cancel", jobId]);
          assertEquals((await terminated(bed, jobId)).exit_status, "job_canceled");
          await assertNothingLeft(bed);
          const manifest = await guest.store.readManifest(guest.imageId);
          for (const blob of Object.values(manifest!.blobs)) {
            assertEquals(await siteCacheBlob(bed, blob.sha256), undefined, "a partial blob shows");
          }
        } finally {
          bed.valve.open();
        }
      });

      await t.step(
        "a blob damaged in the site cache fails one job, the next fetches it",
        async () => {
          const first = await enqueue(bed, ["--workload", "true"]);
          assertEquals((await terminated(bed, first)).exit_status, "workload_finished_success");
          const digest = await smallestBlob(guest);
          await flipAByte((await siteCacheBlob(bed, digest))!);
          const damaged = await enqueue(bed, ["--workload", "true"]);
          const final = await terminated(bed, damaged);
          assertEquals(final.exit_status, "supervisor_host_start_error");
          assertStringIncludes(String(final.exit_message), `blob ${digest}`);
          assertStringIncludes(String(final.exit_message), "site cache does not match its digest");
          await assertNothingLeft(bed);
          const healed = await enqueue(bed, ["--workload", "true"]);
          assertEquals((await terminated(bed, healed)).exit_status, "workload_finished_success");
        },
      );

      await t.step("a blob damaged in the image store is a host start error", async () => {
        // The site cache is emptied and one blob in the store damaged, so the next fetch gets
        // bytes that do not hash to their digest.
        await bed.supervisor!.kill();
        await Deno.remove(`${dir}/supervisor/images`, { recursive: true });
        const digest = await smallestBlob(guest);
        const victim = `${store.root}/${blobPath(digest)}`;
        const original = await Deno.readFile(victim);
        await flipAByte(victim);
        bed.supervisor = await startQemuSupervisor(bed);
        try {
          const jobId = await enqueue(bed, ["--workload", "true"]);
          const final = await terminated(bed, jobId);
          assertEquals(final.exit_status, "supervisor_host_start_error");
          assertStringIncludes(String(final.exit_message), digest);
          await assertNothingLeft(bed);
        } finally {
          await Deno.writeFile(victim, original);
        }
      });
    } finally {
      await bed.supervisor?.kill();
      bed.valve.stop();
      await spine.stop();
      await store.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
