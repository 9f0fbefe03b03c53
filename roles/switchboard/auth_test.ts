import { Hono } from "hono";
import { createToken } from "../../lib/accounts/tokens.ts";
import { createUser, setLocked } from "../../lib/accounts/users.ts";
import { assertEquals, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { authenticate, requirePermission } from "./auth.ts";
import type { AppEnv } from "./context.ts";
import { errorHandler } from "./http_errors.ts";
import { PRINCIPAL_TTL_MS } from "./principal_cache.ts";
import { openTestDeps } from "./test_deps.ts";

const SUPERVISOR = "00000000-0000-4000-8000-000000000001";

Deno.test({
  name: "authenticate() and requirePermission() guard routes by token and permission",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const deps = await openTestDeps();
    try {
      const app = new Hono<AppEnv>();
      app.onError(errorHandler(deps.log));
      app.get("/guarded", authenticate(deps), (c) => {
        const permission = c.req.query("permission");
        const principal = permission === undefined
          ? c.get("principal")
          : requirePermission(c, permission);
        return c.json({ name: principal.name });
      });
      const call = async (authorization: string | undefined, permission?: string) => {
        const response = await app.request(
          permission === undefined ? "/guarded" : `/guarded?permission=${permission}`,
          { headers: authorization === undefined ? {} : { authorization } },
        );
        return { status: response.status, body: await response.json() };
      };
      const tokenFor = async (name: string, permissions: string[]) => {
        const user = await createUser(deps.db, {
          name,
          email: `${name}@example.test`,
          password: "pw",
          permissions,
        });
        const { token } = await createToken(deps.db, { userId: user.user_id, expiresInMs: 60_000 });
        return { token, userId: user.user_id };
      };
      const alice = await tokenFor("alice", ["submit_job", "run_job_on_supervisor:*"]);

      await t.step("authenticate() answers 401 without a valid bearer token", async () => {
        for (
          const header of [undefined, "", `Basic ${alice.token}`, "Bearer", "Bearer not-a-token"]
        ) {
          const { status, body } = await call(header);
          assertEquals(status, 401, String(header));
          assertEquals(body.error.code, "unauthorized");
        }
      });

      await t.step(
        "authenticate() sets the caller for a valid token (any scheme case)",
        async () => {
          assertEquals(await call(`Bearer ${alice.token}`), {
            status: 200,
            body: { name: "alice" },
          });
          assertEquals((await call(`bearer ${alice.token}`)).status, 200);
        },
      );

      await t.step("requirePermission() answers 403 naming the missing permission", async () => {
        assertEquals((await call(`Bearer ${alice.token}`, "submit_job")).status, 200);
        assertEquals(
          (await call(`Bearer ${alice.token}`, `run_job_on_supervisor:${SUPERVISOR}`)).status,
          200,
        );
        const denied = await call(`Bearer ${alice.token}`, "list_jobs");
        assertEquals(denied.status, 403);
        assertEquals(denied.body.error.code, "forbidden");
        assertStringIncludes(denied.body.error.message, '"list_jobs"');
        const root = await tokenFor("root", ["admin"]);
        assertEquals((await call(`Bearer ${root.token}`, `stop_job:${SUPERVISOR}`)).status, 200);
      });

      await t.step("a locked user is refused within the principal cache's TTL", async () => {
        const bob = await tokenFor("bob", []);
        assertEquals((await call(`Bearer ${bob.token}`)).status, 200);
        await setLocked(deps.db, bob.userId, true);
        deps.advanceClock(PRINCIPAL_TTL_MS);
        assertEquals((await call(`Bearer ${bob.token}`)).status, 401);
      });

      await t.step("a cached token is refused the moment it expires", async () => {
        const carol = await createUser(deps.db, {
          name: "carol",
          email: "carol@example.test",
          password: "pw",
        });
        const { token } = await createToken(deps.db, { userId: carol.user_id, expiresInMs: 3_000 });
        assertEquals((await call(`Bearer ${token}`)).status, 200);
        await new Promise((resolve) => setTimeout(resolve, 3_100));
        assertEquals((await call(`Bearer ${token}`)).status, 401);
      });

      await t.step("the token itself never reaches a log line", () => {
        for (const line of deps.logLines) assertEquals(line.includes(alice.token), false, line);
      });
    } finally {
      await deps.close();
    }
  },
});
