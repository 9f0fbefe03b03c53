/**
 * End to end with real processes: switchboard on PostgreSQL, `tml supervisor local`, and the
 * real `tml puppet` it starts. The workload itself inspects the job files it was given.
 */
import { assert, assertEquals, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { createHash } from "node:crypto";
import { runTml, TmlProcess } from "../support/tml_process.ts";
import { findMarkedProcesses } from "../../roles/supervisor/process_marks.ts";
import {
  api,
  createUser,
  registerSupervisor,
  startLocalSupervisor,
  startSpine,
  TEST_IMAGE_ID,
  waitForJob,
} from "../support/spine.ts";

/** Live processes of a local job (the puppet, the workload and its children). */
async function processesOf(jobId: string): Promise<number[]> {
  const found = await findMarkedProcesses((dir) => dir.endsWith(`/jobs/${jobId}`));
  return found.map((process) => process.pid);
}

const SECRET = "jit-config-value with spaces\nand a second line";

Deno.test({
  name: "local supervisor runs a job's workload with its parameter files, end to end",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const spine = await startSpine(["--keepalive-interval", "500ms", "--supervisor-grace", "2s"]);
    const stateDir = await Deno.makeTempDir({ prefix: "tml-local-sup-" });
    let supervisor: TmlProcess | undefined;
    try {
      const { token } = await createUser(spine, "ci", ["submit_job", "run_job_on_supervisor:*"]);
      const registered = await registerSupervisor(spine, "local-1", ["board:local"]);
      supervisor = await startLocalSupervisor(spine, registered, stateDir);

      const enqueue = async (workload: string) => {
        const response = await api(spine, token, "POST", "/jobs", {
          image_id: TEST_IMAGE_ID,
          tag_config: "board:local",
          parameters: {
            "gh-actions-runner-encoded-jit-config": { value: SECRET, secret: true },
            plain: { value: "hello", secret: false },
          },
          workload,
        });
        assertEquals(response.status, 201, JSON.stringify(response.body));
        return (response.body as { job_id: string }).job_id;
      };

      await t.step(
        "parameter files have exact contents and modes; success becomes the status",
        async () => {
          const jobId = await enqueue([
            `P="$TML_PARAMETERS_DIR"`,
            `echo "MODE secret $(stat -c %a "$P/gh-actions-runner-encoded-jit-config")"`,
            `echo "MODE plain $(stat -c %a "$P/plain")"`,
            `echo "SHA secret $(sha256sum < "$P/gh-actions-runner-encoded-jit-config" | cut -d' ' -f1)"`,
            `echo "PLAIN $(cat "$P/plain")"`,
            `echo "JOBID $(cat "$P/../job-id")"`,
          ].join("; "));
          const final = await waitForJob(
            spine,
            token,
            jobId,
            (job) => job.state === "terminated",
            60_000,
          );
          assertEquals(final.exit_status, "workload_finished_success");
          const out = supervisor!.stdout;
          assertStringIncludes(out, "MODE secret 600");
          assertStringIncludes(out, "MODE plain 644");
          assertStringIncludes(
            out,
            `SHA secret ${createHash("sha256").update(SECRET).digest("hex")}`,
          );
          assertStringIncludes(out, "PLAIN hello");
          assertStringIncludes(out, `JOBID ${jobId}`);
          const events = (await api(spine, token, "GET", `/jobs/${jobId}/history`)).body as {
            events: Array<{ state: string | null }>;
          };
          const states = events.events.map((e) => e.state).filter((s) => s !== null);
          assertEquals(states, [
            "queued",
            "scheduled",
            "initializing",
            "initializing",
            "initializing",
            "ready",
            "terminating",
            "terminated",
          ]);
        },
      );

      await t.step("a failing workload's exit code becomes workload_finished_error", async () => {
        const jobId = await enqueue("echo failing; exit 3");
        const final = await waitForJob(
          spine,
          token,
          jobId,
          (job) => job.state === "terminated",
          60_000,
        );
        assertEquals(final.exit_status, "workload_finished_error");
        assertEquals(final.exit_message, "exit code 3");
      });

      await t.step("a workload reports by itself with tml puppet finish", async () => {
        // `tml` as a workload in a VM would call it (the puppet provides it when not installed).
        const jobId = await enqueue(
          'tml puppet finish --unknown --message "reported by hand"; sleep 30',
        );
        const final = await waitForJob(
          spine,
          token,
          jobId,
          (job) => job.state === "terminated",
          60_000,
        );
        assertEquals(final.exit_status, "workload_finished_unknown");
        assertEquals(final.exit_message, "reported by hand");
      });

      await t.step(
        "cancel while ready stops the workload and cleans the scratch directory",
        async () => {
          const jobId = await enqueue("sleep 600");
          await waitForJob(spine, token, jobId, (job) => job.state === "ready", 60_000);
          await api(spine, token, "POST", `/jobs/${jobId}/cancel`);
          const final = await waitForJob(
            spine,
            token,
            jobId,
            (job) => job.state === "terminated",
            30_000,
          );
          assertEquals(final.exit_status, "job_canceled");
          const left = [...Deno.readDirSync(`${stateDir}/jobs`)].map((entry) => entry.name);
          assert(!left.includes(jobId), `scratch directory left behind: ${left}`);
          assertEquals(await processesOf(jobId), [], "the job's processes outlived it");
        },
      );

      await t.step(
        "supervisor killed mid-job: the job ends supervisor_dropped_job; a restart cleans up",
        async () => {
          const jobId = await enqueue("sleep 600");
          await waitForJob(spine, token, jobId, (job) => job.state === "ready", 60_000);
          await supervisor!.kill("SIGKILL");
          const final = await waitForJob(
            spine,
            token,
            jobId,
            (job) => job.state === "terminated",
            30_000,
          );
          assertEquals(final.exit_status, "supervisor_dropped_job");
          // The orphaned puppet and workload keep running until the next supervisor starts.
          assert((await processesOf(jobId)).length > 0, "nothing of the job was left to clean");
          supervisor = await startLocalSupervisor(spine, registered, stateDir);
          assertEquals([...Deno.readDirSync(`${stateDir}/jobs`)].length, 0);
          assertEquals(await processesOf(jobId), [], "a restart left the job's processes running");
        },
      );

      await t.step(
        "the workload's console reaches the API with secret values redacted",
        async () => {
          const jobId = await enqueue(
            'echo "start"; cat "$TML_PARAMETERS_DIR/gh-actions-runner-encoded-jit-config"; echo; for i in 1 2 3; do echo "line $i"; sleep 0.3; done',
          );
          const follow = runTml(["job", "logs", "-f", jobId], {
            env: { TML_API_URL: spine.url, TML_API_TOKEN: token, HOME: stateDir },
          });
          const final = await waitForJob(
            spine,
            token,
            jobId,
            (job) => job.state === "terminated",
            60_000,
          );
          assertEquals(final.exit_status, "workload_finished_success");
          const followed = await follow;
          assertEquals(followed.code, 0, followed.stderr);
          assertStringIncludes(followed.stdout, "start\n[redacted]\nline 1\nline 2\nline 3\n");
          assert(!followed.stdout.includes("jit-config-value"), "secret value in the job log");
          const response = await fetch(`${spine.url}/api/v1/jobs/${jobId}/logs?offset=6`, {
            headers: { authorization: `Bearer ${token}` },
          });
          const text = await response.text();
          assertEquals(text.startsWith("[redacted]\nline 1"), true, text);
          assertEquals(
            Number(response.headers.get("x-tml-log-next-offset")),
            6 + new TextEncoder().encode(text).length,
          );
        },
      );

      await t.step(
        "a supervisor stopped with SIGTERM ends its job at once and leaves nothing behind",
        async () => {
          const jobId = await enqueue("sleep 600");
          await waitForJob(spine, token, jobId, (job) => job.state === "ready", 60_000);
          const status = await supervisor!.kill("SIGTERM");
          assertEquals(status.code, 0, supervisor!.stderr);
          // Reported by the supervisor itself, well before the 2 s grace would drop the job.
          const final = await waitForJob(
            spine,
            token,
            jobId,
            (job) => job.state === "terminated",
            1_000,
          );
          assertEquals(final.exit_status, "internal_supervisor_error");
          assertEquals(await processesOf(jobId), []);
          assertEquals([...Deno.readDirSync(`${stateDir}/jobs`)].length, 0);
          const stderr = supervisor!.stderr;
          supervisor = await startLocalSupervisor(spine, registered, stateDir);
          assert(!stderr.includes("jit-config-value"), "secret in the stopped supervisor's log");
        },
      );

      await t.step("no secret value in the switchboard's or supervisor's logs", () => {
        assert(!spine.switchboard.stderr.includes("jit-config-value"), "secret in switchboard log");
        assert(!supervisor!.stderr.includes("jit-config-value"), "secret in supervisor log");
      });
    } finally {
      await supervisor?.kill();
      await spine.stop();
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    }
  },
});
