/**
 * End to end over real sockets: a `tml switchboard serve` process on a real PostgreSQL server,
 * users and supervisors made with `tml admin`, and scripted supervisors speaking the real
 * websocket protocol, so each test can hold a job in exactly the state it needs.
 */
import { assert, assertEquals, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { ScriptedSupervisor } from "../support/scripted_supervisor.ts";
import {
  api,
  createUser,
  registerSupervisor,
  type Spine,
  startSpine,
  TEST_IMAGE_ID,
  waitForJob,
} from "../support/spine.ts";

const FAST_TIMERS = [
  "--keepalive-interval",
  "300ms",
  "--supervisor-grace",
  "1500ms",
  "--stop-grace",
  "1s",
];

interface Context {
  spine: Spine;
  token: string;
  board: string;
  supervisor: ScriptedSupervisor;
  supervisorToken: string;
}

/** Each test gets its own board tag, so jobs of one test never match another's supervisor. */
async function withBoard(spine: Spine, token: string, fn: (ctx: Context) => Promise<void>) {
  const board = `board:test-${crypto.randomUUID().slice(0, 8)}`;
  const registered = await registerSupervisor(spine, `sup-${board.slice(11)}`, [board]);
  const supervisor = new ScriptedSupervisor(spine.url, registered.supervisorId, registered.token);
  try {
    await fn({ spine, token, board, supervisor, supervisorToken: registered.token });
  } finally {
    await supervisor.close().catch(() => {});
  }
}

async function enqueue(ctx: Context, extra: Record<string, unknown> = {}) {
  const response = await api(ctx.spine, ctx.token, "POST", "/jobs", {
    image_id: TEST_IMAGE_ID,
    tag_config: ctx.board,
    parameters: {
      "gh-actions-runner-encoded-jit-config": { value: "s3cr3t-v4lue", secret: true },
      x: { value: "1" },
    },
    ...extra,
  });
  assertEquals(response.status, 201, JSON.stringify(response.body));
  return response.body as Record<string, unknown> & { job_id: string };
}

async function history(ctx: Context, jobId: string) {
  const response = await api(ctx.spine, ctx.token, "GET", `/jobs/${jobId}/history`);
  assertEquals(response.status, 200);
  return (response.body as { events: Array<Record<string, unknown>> }).events;
}

Deno.test({
  name: "switchboard job lifecycle end to end (PostgreSQL, real processes)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const spine = await startSpine(FAST_TIMERS);
    try {
      const { token } = await createUser(spine, "alice", ["submit_job", "run_job_on_supervisor:*"]);

      await t.step(
        "a job no supervisor can take ends at once with supervisor_match_error",
        async () => {
          const response = await api(spine, token, "POST", "/jobs", {
            image_id: TEST_IMAGE_ID,
            tag_config: "board:does-not-exist",
          });
          assertEquals(response.status, 201);
          const job = response.body as Record<string, unknown>;
          assertEquals(job.state, "terminated");
          assertEquals(job.exit_status, "supervisor_match_error");
        },
      );

      await t.step(
        "a job runs through the lifecycle and the workload result is its status",
        () =>
          withBoard(spine, token, async (ctx) => {
            await ctx.supervisor.connect();
            const job = await enqueue(ctx);
            assertEquals(
              (job.parameters as Record<string, { value: unknown }>)[
                "gh-actions-runner-encoded-jit-config"
              ].value,
              null,
            );
            const start = await ctx.supervisor.nextCommand(
              "start_job",
              (c) => c.job.job_id === job.job_id,
            );
            // Only the supervisor that runs the job receives the secret value.
            assertEquals(
              start.job.parameters["gh-actions-runner-encoded-jit-config"].value,
              "s3cr3t-v4lue",
            );
            assertEquals(
              (await ctx.supervisor.update({
                job_id: job.job_id,
                state: "initializing",
                sub_state: "booting",
              })).ok,
              true,
            );
            assertEquals(
              (await ctx.supervisor.update({ job_id: job.job_id, state: "ready" })).ok,
              true,
            );
            const ready = await waitForJob(spine, token, job.job_id, (j) => j.state === "ready");
            assertEquals(ready.supervisor_id, ctx.supervisor.supervisorId);
            const done = await ctx.supervisor.update({
              job_id: job.job_id,
              state: "terminated",
              exit_status: "workload_finished_success",
              message: "exit code 0",
            });
            assertEquals(done.ok, true);
            const final = await waitForJob(
              spine,
              token,
              job.job_id,
              (j) => j.state === "terminated",
            );
            assertEquals(final.exit_status, "workload_finished_success");
            const events = await history(ctx, job.job_id);
            assertEquals(
              events.map((e) => e.kind === "state" ? e.state : e.exit_status),
              [
                "queued",
                "scheduled",
                "initializing",
                "ready",
                "workload_finished_success",
                "terminated",
              ],
            );
            assertEquals(events.map((e) => e.actor), [
              "user",
              "switchboard",
              "supervisor",
              "supervisor",
              "supervisor",
              "supervisor",
            ]);
            // The wait route returns at once for a terminated job.
            const waited = await api(spine, token, "GET", `/jobs/${job.job_id}/wait?timeout=5s`);
            assertEquals(
              (waited.body as Record<string, unknown>).exit_status,
              "workload_finished_success",
            );
          }),
      );

      await t.step(
        "an illegal report is refused and changes nothing",
        () =>
          withBoard(spine, token, async (ctx) => {
            await ctx.supervisor.connect();
            const job = await enqueue(ctx);
            await ctx.supervisor.nextCommand("start_job");
            await ctx.supervisor.update({
              job_id: job.job_id,
              state: "terminated",
              exit_status: "workload_finished_error",
            });
            await waitForJob(spine, token, job.job_id, (j) => j.state === "terminated");
            const before = await history(ctx, job.job_id);
            const ack = await ctx.supervisor.update({ job_id: job.job_id, state: "ready" });
            assertEquals(ack.ok, false);
            assertEquals(ack.error?.code, "illegal_transition");
            const late = await ctx.supervisor.update({
              job_id: job.job_id,
              exit_status: "workload_finished_success",
            });
            assertEquals(late.ok, false);
            assertEquals((await history(ctx, job.job_id)).length, before.length);
            const view = await api(spine, token, "GET", `/jobs/${job.job_id}`);
            assertEquals(
              (view.body as Record<string, unknown>).exit_status,
              "workload_finished_error",
            );
            // A malformed command is answered with an error naming the field.
            const garbage = await ctx.supervisor.request({
              type: "job_update",
              job_id: "not-a-uuid",
              state: "ready",
            });
            assertEquals(garbage.ok, false);
            assertEquals(garbage.error?.code, "invalid_message");
            assertStringIncludes(garbage.error?.message ?? "", "job_id");
          }),
      );

      for (
        const holdIn of ["queued", "scheduled", "initializing", "ready", "terminating"] as const
      ) {
        await t.step(
          `cancel while ${holdIn} ends the job with job_canceled`,
          () =>
            withBoard(spine, token, async (ctx) => {
              if (holdIn !== "queued") await ctx.supervisor.connect();
              const job = await enqueue(ctx);
              if (holdIn !== "queued") {
                await ctx.supervisor.nextCommand("start_job");
                if (holdIn !== "scheduled") {
                  for (const state of ["initializing", "ready", "terminating"] as const) {
                    await ctx.supervisor.update({ job_id: job.job_id, state });
                    if (state === holdIn) break;
                  }
                }
                await waitForJob(spine, token, job.job_id, (j) => j.state === holdIn);
              }
              const canceled = await api(spine, token, "POST", `/jobs/${job.job_id}/cancel`);
              assertEquals(canceled.status, 200);
              assertEquals((canceled.body as Record<string, unknown>).exit_status, "job_canceled");
              if (holdIn !== "queued") {
                const stop = await ctx.supervisor.nextCommand(
                  "stop_job",
                  (c) => c.job_id === job.job_id,
                );
                assertEquals(stop.reason, "canceled");
                // A workload result arriving after the cancel does not replace it.
                await ctx.supervisor.update({
                  job_id: job.job_id,
                  exit_status: "workload_finished_success",
                });
                await ctx.supervisor.update({ job_id: job.job_id, state: "terminated" });
              }
              const final = await waitForJob(
                spine,
                token,
                job.job_id,
                (j) => j.state === "terminated",
              );
              assertEquals(final.exit_status, "job_canceled");
              const again = await api(spine, token, "POST", `/jobs/${job.job_id}/cancel`);
              assertEquals(again.status, 409);
            }),
        );
      }

      await t.step(
        "queue timeout: an eligible supervisor exists but never takes the job",
        () =>
          withBoard(spine, token, async (ctx) => {
            const job = await enqueue(ctx, { queue_timeout: "700ms" });
            const final = await waitForJob(
              spine,
              token,
              job.job_id,
              (j) => j.state === "terminated",
            );
            assertEquals(final.exit_status, "queue_timeout");
          }),
      );

      await t.step(
        "job timeout: the supervisor is told to stop and the status is job_timeout",
        () =>
          withBoard(spine, token, async (ctx) => {
            await ctx.supervisor.connect();
            const job = await enqueue(ctx, { timeout: "1s" });
            await ctx.supervisor.nextCommand("start_job");
            await ctx.supervisor.update({ job_id: job.job_id, state: "ready" });
            const stop = await ctx.supervisor.nextCommand(
              "stop_job",
              (c) => c.job_id === job.job_id,
            );
            assertEquals(stop.reason, "timeout");
            await ctx.supervisor.update({ job_id: job.job_id, state: "terminated" });
            const final = await waitForJob(
              spine,
              token,
              job.job_id,
              (j) => j.state === "terminated",
            );
            assertEquals(final.exit_status, "job_timeout");
          }),
      );

      await t.step(
        "a supervisor that never confirms a stop has its job terminated after the stop grace",
        () =>
          withBoard(spine, token, async (ctx) => {
            await ctx.supervisor.connect();
            const job = await enqueue(ctx);
            await ctx.supervisor.nextCommand("start_job");
            await ctx.supervisor.update({ job_id: job.job_id, state: "ready" });
            await api(spine, token, "POST", `/jobs/${job.job_id}/cancel`);
            const final = await waitForJob(spine, token, job.job_id, (j) =>
              j.state === "terminated", 10_000);
            assertEquals(final.exit_status, "job_canceled");
          }),
      );

      await t.step(
        "a supervisor that disconnects past its grace drops the job",
        () =>
          withBoard(spine, token, async (ctx) => {
            await ctx.supervisor.connect();
            const job = await enqueue(ctx);
            await ctx.supervisor.nextCommand("start_job");
            await ctx.supervisor.update({ job_id: job.job_id, state: "ready" });
            await ctx.supervisor.close();
            const final = await waitForJob(
              spine,
              token,
              job.job_id,
              (j) => j.state === "terminated",
              10_000,
            );
            assertEquals(final.exit_status, "supervisor_dropped_job");
          }),
      );

      await t.step(
        "a supervisor that reconnects without its job dropped it; with it, the job goes on",
        () =>
          withBoard(spine, token, async (ctx) => {
            await ctx.supervisor.connect();
            const kept = await enqueue(ctx);
            await ctx.supervisor.nextCommand("start_job");
            await ctx.supervisor.update({ job_id: kept.job_id, state: "ready" });
            await ctx.supervisor.close();
            const again = new ScriptedSupervisor(
              spine.url,
              ctx.supervisor.supervisorId,
              ctx.supervisorToken,
            );
            await again.connect([{ job_id: kept.job_id, state: "ready", sub_state: null }]);
            await again.update({
              job_id: kept.job_id,
              state: "terminated",
              exit_status: "workload_finished_success",
            });
            const final = await waitForJob(spine, token, kept.job_id, (j) =>
              j.state === "terminated");
            assertEquals(final.exit_status, "workload_finished_success");

            const lost = await enqueue(ctx);
            await again.nextCommand("start_job", (c) =>
              c.job.job_id === lost.job_id);
            await again.update({ job_id: lost.job_id, state: "ready" });
            await again.close();
            const third = new ScriptedSupervisor(
              spine.url,
              ctx.supervisor.supervisorId,
              ctx.supervisorToken,
            );
            await third.connect([]);
            const dropped = await waitForJob(spine, token, lost.job_id, (j) =>
              j.state === "terminated");
            assertEquals(dropped.exit_status, "supervisor_dropped_job");
            await third.close();
          }),
      );

      await t.step(
        "restart policy: an infrastructure failure re-enqueues a linked job",
        () =>
          withBoard(spine, token, async (ctx) => {
            await ctx.supervisor.connect();
            const job = await enqueue(ctx, { restart_count: 1 });
            await ctx.supervisor.nextCommand("start_job", (c) => c.job.job_id === job.job_id);
            await ctx.supervisor.update({
              job_id: job.job_id,
              state: "terminated",
              exit_status: "supervisor_host_start_error",
              message: "image fetch failed",
            });
            const failed = await waitForJob(
              spine,
              token,
              job.job_id,
              (j) => j.state === "terminated",
            );
            assertEquals(failed.exit_status, "supervisor_host_start_error");
            const retryId = failed.restarted_as as string;
            assert(typeof retryId === "string", "restarted_as is set");
            const start = await ctx.supervisor.nextCommand(
              "start_job",
              (c) => c.job.job_id === retryId,
            );
            assertEquals(start.job.parameters.x.value, "1");
            const retry = await api(spine, token, "GET", `/jobs/${retryId}`);
            assertEquals((retry.body as Record<string, unknown>).restarted_from, job.job_id);
            assertEquals((retry.body as Record<string, unknown>).restart_count, 0);
            await ctx.supervisor.update({
              job_id: retryId,
              state: "terminated",
              exit_status: "workload_finished_success",
            });
          }),
      );

      await t.step(
        "a supervisor speaking a too-old protocol is refused, naming both versions",
        async () => {
          const registered = await registerSupervisor(spine, "old-timer", ["board:old"]);
          const old = new ScriptedSupervisor(spine.url, registered.supervisorId, registered.token, {
            protocolVersion: 0,
          });
          let error = "";
          await old.connect().catch((e) => (error = String(e)));
          assertStringIncludes(error, "protocol version 0");
          assertStringIncludes(old.refusal ?? "", "at least 1");
        },
      );

      await t.step(
        "kill -9 of the switchboard mid-job: after a restart the job finishes correctly",
        () =>
          withBoard(spine, token, async (ctx) => {
            await ctx.supervisor.connect();
            const job = await enqueue(ctx);
            await ctx.supervisor.nextCommand("start_job");
            await ctx.supervisor.update({ job_id: job.job_id, state: "ready" });
            await spine.restart("SIGKILL");
            await ctx.supervisor.close().catch(() => {});
            const back = new ScriptedSupervisor(
              spine.url,
              ctx.supervisor.supervisorId,
              ctx.supervisorToken,
            );
            await back.connect([{ job_id: job.job_id, state: "ready", sub_state: null }]);
            assertEquals(
              (await back.update({
                job_id: job.job_id,
                state: "terminated",
                exit_status: "workload_finished_success",
              })).ok,
              true,
            );
            const final = await waitForJob(
              spine,
              token,
              job.job_id,
              (j) => j.state === "terminated",
            );
            assertEquals(final.exit_status, "workload_finished_success");
            await back.close();
          }),
      );

      await t.step("secret parameter values appear in no log line", () => {
        assert(
          !spine.switchboard.stderr.includes("s3cr3t-v4lue"),
          "secret value leaked into the log",
        );
        assert(
          !spine.switchboard.stdout.includes("s3cr3t-v4lue"),
          "secret value leaked into stdout",
        );
      });
    } finally {
      await spine.stop();
    }
  },
});
