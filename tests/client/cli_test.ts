/**
 * The `tml` CLI end to end, as a CI script uses it: real switchboard on PostgreSQL, real local
 * supervisor, every command a real `tml` process with a scratch HOME.
 */
import { assert, assertEquals, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { runTml, TmlProcess } from "../support/tml_process.ts";
import {
  admin,
  api,
  createUser,
  registerSupervisor,
  startLocalSupervisor,
  startSpine,
  TEST_IMAGE_ID,
} from "../support/spine.ts";

Deno.test({
  name: "tml CLI end to end: login, enqueue as CI does, wait exit codes, bad input, isolation",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const spine = await startSpine(["--keepalive-interval", "500ms"]);
    const home = await Deno.makeTempDir({ prefix: "tml-cli-home-" });
    const env = {
      HOME: home,
      XDG_CONFIG_HOME: `${home}/.config`,
      TML_API_URL: spine.url,
      // A scratch HOME would otherwise move Deno's cache and download every package again.
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    };
    let supervisor: TmlProcess | undefined;
    try {
      const { token } = await createUser(spine, "ci-bot", [
        "submit_job",
        "run_job_on_supervisor:*",
      ]);
      const registered = await registerSupervisor(spine, "cli-local", ["board:cli"]);
      supervisor = await startLocalSupervisor(spine, registered, `${home}/sup`);
      const ci = { ...env, TML_API_TOKEN: token };

      const enqueueJob = async (workload: string) => {
        const result = await runTml([
          "job",
          "enqueue",
          TEST_IMAGE_ID,
          "--tag-config",
          "board:cli",
          "--parameters",
          JSON.stringify({
            "gh-actions-runner-encoded-jit-config": { value: "c2VjcmV0", secret: true },
          }),
          "--workload",
          workload,
        ], { env: ci });
        assertEquals(result.code, 0, result.stderr);
        // Exactly what `jq -r .job_id` does: one JSON object on stdout.
        const jobId = JSON.parse(result.stdout).job_id;
        assert(typeof jobId === "string" && jobId.length === 36, result.stdout);
        return jobId as string;
      };

      await t.step("enqueue + wait: success is exit code 0 and the final JSON", async () => {
        const jobId = await enqueueJob("true");
        const waited = await runTml(["job", "wait", jobId, "--timeout", "60s"], { env: ci });
        assertEquals(waited.code, 0, waited.stderr);
        assertEquals(JSON.parse(waited.stdout).exit_status, "workload_finished_success");
        assertEquals(
          JSON.parse(waited.stdout).parameters["gh-actions-runner-encoded-jit-config"].value,
          null,
        );
      });

      await t.step("a failing workload is exit code 10, a canceled job 14", async () => {
        const failing = await enqueueJob("exit 7");
        assertEquals((await runTml(["job", "wait", failing], { env: ci })).code, 10);
        const slow = await enqueueJob("sleep 300");
        const canceled = await runTml(["job", "cancel", slow], { env: ci });
        assertEquals(canceled.code, 0, canceled.stderr);
        assertEquals((await runTml(["job", "wait", slow], { env: ci })).code, 14);
      });

      await t.step("show, list and history print JSON for machines", async () => {
        const listed = await runTml(["job", "list", "--json"], { env: ci });
        assertEquals(listed.code, 0, listed.stderr);
        assert(JSON.parse(listed.stdout).jobs.length >= 3);
        const jobId = JSON.parse(listed.stdout).jobs[0].job_id;
        const history = await runTml(["job", "history", jobId, "--json"], { env: ci });
        assertEquals(JSON.parse(history.stdout).events[0].state, "queued");
      });

      await t.step("tml login stores a token that later commands use", async () => {
        await admin(spine, [
          "user",
          "create",
          "dora",
          "--email",
          "dora@example.test",
          "--password",
          "hunter22",
          "--grant",
          "submit_job",
        ]);
        const login = await runTml(["login"], {
          env: { ...env, TML_USER: "dora@example.test", TML_PASSWORD: "hunter22" },
        });
        assertEquals(login.code, 0, login.stderr);
        const credentials = await Deno.stat(`${home}/.config/tml/credentials.json`);
        assertEquals((credentials.mode ?? 0) & 0o777, 0o600);
        const tokens = await runTml(["token", "list", "--json"], { env });
        assertEquals(tokens.code, 0, tokens.stderr);
        assertEquals(JSON.parse(tokens.stdout).tokens.length, 1);
        const wrong = await runTml(["login", "dora", "nope"], { env });
        assertEquals(wrong.code, 1);
        assertStringIncludes(wrong.stderr, "wrong user or password");
      });

      await t.step("bad input exits non-zero with a message naming the field", async () => {
        const bad = await runTml([
          "job",
          "enqueue",
          TEST_IMAGE_ID,
          "--parameters",
          '{"x": {"value": 5}}',
        ], { env: ci });
        assertEquals(bad.code, 2);
        assertStringIncludes(bad.stderr, "x.value");
        const badTags = await runTml(
          ["job", "enqueue", TEST_IMAGE_ID, "--tag-config", "board:(x"],
          { env: ci },
        );
        assertEquals(badTags.code, 2);
        assertStringIncludes(badTags.stderr, "column");
        const badImage = await runTml(["job", "enqueue", "not-an-image"], { env: ci });
        assertEquals(badImage.code, 2);
        assertStringIncludes(badImage.stderr, "image_id");
        const unreachable = await runTml(["job", "list"], {
          env: { ...ci, TML_API_URL: "http://127.0.0.1:9" },
        });
        assertEquals(unreachable.code, 1);
        assertStringIncludes(unreachable.stderr, "Cannot reach the switchboard");
      });

      await t.step(
        "every route needs a token; users cannot see or cancel each other's jobs",
        async () => {
          for (
            const [method, path] of [
              ["GET", "/jobs"],
              ["POST", "/jobs"],
              ["GET", `/jobs/${crypto.randomUUID()}`],
              ["POST", `/jobs/${crypto.randomUUID()}/cancel`],
              ["GET", "/supervisors"],
              ["GET", "/tokens"],
              ["GET", "/whoami"],
              ["POST", "/tokens"],
            ]
          ) {
            const response = await api(spine, "", method, path, method === "POST" ? {} : undefined);
            assertEquals(response.status, 401, `${method} ${path}`);
          }
          const other = await createUser(spine, "mallory", ["submit_job"]);
          const jobId = await enqueueJob("sleep 1");
          assertEquals((await api(spine, other.token, "GET", `/jobs/${jobId}`)).status, 404);
          assertEquals(
            (await api(spine, other.token, "POST", `/jobs/${jobId}/cancel`)).status,
            404,
          );
          assertEquals(
            (await api(spine, other.token, "GET", `/jobs/${jobId}/history`)).status,
            404,
          );
          const theirList = await api(spine, other.token, "GET", "/jobs");
          assertEquals((theirList.body as { jobs: unknown[] }).jobs.length, 0);
          const openapi = await api(spine, "", "GET", "/openapi.json");
          assertEquals(openapi.status, 200);
          assert(
            "/api/v1/jobs/{id}/wait" in (openapi.body as { paths: Record<string, unknown> }).paths,
          );
        },
      );

      await t.step("malformed and oversized bodies get clear 4xx errors", async () => {
        const malformed = await api(spine, token, "POST", "/jobs", "{not json");
        assertEquals(malformed.status, 400);
        assertEquals((malformed.body as { error: { code: string } }).error.code, "invalid_json");
        const unknownField = await api(spine, token, "POST", "/jobs", {
          image_id: TEST_IMAGE_ID,
          surprise: 1,
        });
        assertEquals(unknownField.status, 400);
        const huge = await api(spine, token, "POST", "/jobs", {
          image_id: TEST_IMAGE_ID,
          workload: "x".repeat(2_000_000),
        });
        assertEquals(huge.status, 413);
        const wrongType = await api(spine, token, "POST", "/jobs", {
          image_id: TEST_IMAGE_ID,
          restart_count: "two",
        });
        assertEquals((wrongType.body as { error: { field: string } }).error.field, "restart_count");
      });

      await t.step("no secret value or token in any log", () => {
        for (
          const log of [spine.switchboard.stderr, spine.switchboard.stdout, supervisor!.stderr]
        ) {
          assert(!log.includes("c2VjcmV0"), "secret parameter value in a log");
          assert(!log.includes(token), "API token in a log");
        }
      });
    } finally {
      await supervisor?.kill();
      await spine.stop();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
