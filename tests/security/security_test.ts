/**
 * Security over a real socket, against a running `tml switchboard serve` on PostgreSQL:
 * every route of the published OpenAPI document refuses a request without a valid token;
 * users cannot read or cancel each other's jobs; secret parameter values, passwords and
 * tokens appear in no API response, no log line and (tokens) not in the database; failed
 * logins are rate-limited per user and per address.
 */
import { openPostgres } from "../../lib/db/postgres.ts";
import { assert, assertEquals } from "../../lib/testing/asserts.ts";
import {
  admin,
  api,
  type ApiResponse,
  createUser,
  registerSupervisor,
  startSpine,
  TEST_IMAGE_ID,
} from "../support/spine.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const SECRET = `s3cret-${crypto.randomUUID()}`;
const WRONG_PASSWORD = `wrong-${crypto.randomUUID()}`;
/** Routes anyone may call; every other route needs a token. */
const PUBLIC = new Set([
  "get /api/v1/health",
  "get /api/v1/openapi.json",
  "post /api/v1/tokens/login",
  "get /api/v1/rendezvous/keys", // Public keys, so rendezvous servers need no credentials.
]);

/** Routes that take a supervisor's token rather than an API token. */
const SUPERVISOR_ROUTES = new Set(["/api/v1/supervisors/connect", "/api/v1/rendezvous/grant"]);

Deno.test({
  name:
    "security: tokens on every route, job isolation, no secret in responses or logs, login limits",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const spine = await startSpine();
    const responses: string[] = [];
    const call = async (token: string, method: string, path: string, body?: unknown) => {
      const response = await api(spine, token, method, path, body);
      responses.push(JSON.stringify(response.body));
      return response;
    };
    try {
      const alice = await createUser(spine, "alice", ["submit_job", "run_job_on_supervisor:*"]);
      const mallory = await createUser(spine, "mallory", ["submit_job", "run_job_on_supervisor:*"]);
      const root = await createUser(spine, "root", ["admin"]);
      const supervisor = await registerSupervisor(spine, "sec-1", ["board:sec"]);

      await t.step(
        "every documented route refuses a missing, unknown or wrong-kind token",
        async () => {
          const document = (await call("", "GET", "/openapi.json")).body as Json;
          const routes = Object.entries<Json>(document.paths).flatMap(([path, operations]) =>
            Object.keys(operations).map((method) => ({ method, path }))
          );
          assert(routes.length >= 15, `only ${routes.length} routes documented`);
          for (const { method, path } of routes) {
            if (PUBLIC.has(`${method} ${path}`)) continue;
            const concrete = path.replace("/api/v1", "").replaceAll("{id}", crypto.randomUUID());
            const body = method === "post" ? {} : undefined;
            const wrongKind = SUPERVISOR_ROUTES.has(path) ? alice.token : supervisor.token;
            for (const token of ["", "x".repeat(172), wrongKind]) {
              const response = await call(token, method.toUpperCase(), concrete, body);
              assertEquals(
                response.status,
                401,
                `${method} ${path} with token "${token.slice(0, 4)}"`,
              );
            }
          }
          const userAsSupervisor = await call(alice.token, "GET", "/supervisors/connect");
          assertEquals(userAsSupervisor.status, 401);
          assertEquals((await call("", "GET", "/health")).status, 200);
        },
      );

      await t.step("an expired or revoked token is refused", async () => {
        const shortLived = await call(alice.token, "POST", "/tokens", { expires_in: "1s" });
        const revocable = await call(alice.token, "POST", "/tokens", {});
        await new Promise((resolve) => setTimeout(resolve, 1_200));
        assertEquals((await call((shortLived.body as Json).token, "GET", "/whoami")).status, 401);
        const { token, token_id: tokenId } = revocable.body as Json;
        assertEquals((await call(token, "GET", "/jobs")).status, 200);
        assertEquals((await call(alice.token, "DELETE", `/tokens/${tokenId}`)).status, 200);
        assertEquals((await call(token, "GET", "/jobs")).status, 401);
      });

      let jobId = "";
      await t.step("secret parameter values are never returned", async () => {
        const enqueued = await call(alice.token, "POST", "/jobs", {
          image_id: TEST_IMAGE_ID,
          tag_config: "board:sec",
          parameters: {
            "gh-actions-runner-encoded-jit-config": { value: SECRET, secret: true },
            visible: { value: "plain-value", secret: false },
          },
        });
        assertEquals(enqueued.status, 201, JSON.stringify(enqueued.body));
        const job = enqueued.body as Json;
        jobId = job.job_id;
        assertEquals(job.state, "queued");
        assertEquals(job.parameters["gh-actions-runner-encoded-jit-config"], {
          value: null,
          secret: true,
        });
        assertEquals(job.parameters.visible, { value: "plain-value", secret: false });
        for (
          const path of [
            `/jobs/${jobId}`,
            "/jobs",
            `/jobs/${jobId}/history`,
            `/jobs/${jobId}/wait?timeout=0`,
          ]
        ) {
          assertEquals((await call(alice.token, "GET", path)).status, 200, path);
        }
        // Refused requests must not echo the values they carried either.
        for (
          const parameters of [
            { "../escape": { value: SECRET, secret: true } },
            { x: { value: SECRET, secret: "yes" } },
            { x: { value: SECRET, secret: true, extra: 1 } },
          ]
        ) {
          const refused = await call(alice.token, "POST", "/jobs", {
            image_id: TEST_IMAGE_ID,
            parameters,
          });
          assertEquals(refused.status, 400, JSON.stringify(refused.body));
        }
        const overlong = await call(alice.token, "POST", "/jobs", {
          image_id: TEST_IMAGE_ID,
          parameters: { x: { value: SECRET.repeat(40_000), secret: true } },
        });
        assertEquals(overlong.status, 413);
      });

      await t.step("a user cannot read, wait for or cancel another user's job", async () => {
        for (
          const [method, path] of [
            ["GET", `/jobs/${jobId}`],
            ["GET", `/jobs/${jobId}/history`],
            ["GET", `/jobs/${jobId}/wait?timeout=0`],
            ["GET", `/jobs/${jobId}/logs`],
            ["POST", `/jobs/${jobId}/cancel`],
          ]
        ) {
          const response = await call(mallory.token, method, path);
          assertEquals(response.status, 404, `${method} ${path}`);
          const missing = await call(
            mallory.token,
            method,
            path.replace(jobId, crypto.randomUUID()),
          );
          assertEquals(response.body, bodyWithout(missing, jobId), "a foreign job looks missing");
        }
        const list = await call(mallory.token, "GET", "/jobs");
        assertEquals((list.body as Json).jobs, []);
        const still = (await call(alice.token, "GET", `/jobs/${jobId}`)).body as Json;
        assertEquals([still.state, still.cancel_requested], ["queued", false]);
      });

      await t.step("read_job_status lets a user read a job but not cancel it", async () => {
        const reader = await createUser(spine, "reader", [`read_job_status:${jobId}`]);
        assertEquals((await call(reader.token, "GET", `/jobs/${jobId}`)).status, 200);
        const cancel = await call(reader.token, "POST", `/jobs/${jobId}/cancel`);
        assertEquals(cancel.status, 403);
        assert(JSON.stringify(cancel.body).includes(`stop_job:${jobId}`));
        const still = (await call(alice.token, "GET", `/jobs/${jobId}`)).body as Json;
        assertEquals(still.cancel_requested, false);
      });

      await t.step("an admin reads and cancels anyone's job", async () => {
        assertEquals((await call(root.token, "GET", `/jobs/${jobId}`)).status, 200);
        assertEquals(((await call(root.token, "GET", "/jobs")).body as Json).jobs.length, 1);
        const canceled = await call(root.token, "POST", `/jobs/${jobId}/cancel`);
        assertEquals(canceled.status, 200);
        const ended = (await call(alice.token, "GET", `/jobs/${jobId}/wait?timeout=10s`)).body;
        assertEquals([(ended as Json).state, (ended as Json).exit_status], [
          "terminated",
          "job_canceled",
        ]);
      });

      await t.step(
        "failed logins are limited per user, even with the right password after",
        async () => {
          await admin(spine, [
            "user",
            "create",
            "carol",
            "--email",
            "carol@example.test",
            "--password-stdin",
          ], "carol-password\n");
          for (let i = 0; i < 5; i++) {
            const failed = await call("", "POST", "/tokens/login", {
              user: "carol",
              password: WRONG_PASSWORD,
            });
            assertEquals(failed.status, 401);
          }
          const limited = await fetch(`${spine.url}/api/v1/tokens/login`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ user: "carol@example.test", password: "carol-password" }),
          });
          assertEquals(limited.status, 429);
          assert(Number(limited.headers.get("retry-after")) > 0);
          await limited.body?.cancel();
        },
      );

      await t.step("failed logins are limited per address, for every user", async () => {
        // Five failures were counted above; fifteen more reach the address's limit of twenty.
        for (let i = 0; i < 15; i++) {
          const failed = await call("", "POST", "/tokens/login", {
            user: `ghost-${i}`,
            password: WRONG_PASSWORD,
          });
          assertEquals(failed.status, 401);
        }
        const limited = await call("", "POST", "/tokens/login", {
          user: "alice",
          password: "whatever",
        });
        assertEquals(limited.status, 429);
      });

      await t.step("no secret in any response, log line or stored token", async () => {
        const tokens = [alice.token, mallory.token, root.token, supervisor.token];
        const everything = responses.join("\n");
        assert(!everything.includes(SECRET), "secret parameter value in an API response");
        const logs = spine.switchboard.stdout + spine.switchboard.stderr;
        assert(logs.includes("job enqueued"), "the switchboard logged nothing useful");
        for (
          const [label, secret] of [
            ["secret parameter value", SECRET],
            ["password", WRONG_PASSWORD],
            ["password", "carol-password"],
            ...tokens.map((token) => ["token", token]),
          ]
        ) {
          assert(!logs.includes(secret), `${label} in the switchboard log`);
        }
        const db = await openPostgres(spine.databaseUrl);
        try {
          const dump = JSON.stringify([
            await db.query(`SELECT * FROM api_tokens`),
            await db.query(`SELECT * FROM supervisors`),
          ]);
          for (const token of tokens) assert(!dump.includes(token), "raw token in the database");
        } finally {
          await db.close();
        }
      });
    } finally {
      await spine.stop();
    }
  },
});

/** The body of `response` with `id` in place of the random id it asked for. */
function bodyWithout(response: ApiResponse, id: string): unknown {
  return JSON.parse(
    JSON.stringify(response.body).replace(
      /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g,
      id,
    ),
  );
}
