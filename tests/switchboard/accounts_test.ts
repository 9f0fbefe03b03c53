/**
 * Accounts over a real socket: login (rate limits, locked and unknown users), API tokens
 * (permission subsets, expiry, revocation) and supervisor token rotation, against a real
 * `tml switchboard serve` on PostgreSQL, administered with `tml admin`.
 */
import { assert, assertEquals, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { ScriptedSupervisor } from "../support/scripted_supervisor.ts";
import { admin, api, createUser, registerSupervisor, startSpine } from "../support/spine.ts";

Deno.test({
  name: "accounts end to end: tokens, subsets, expiry, revocation, login limits, rotation",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const spine = await startSpine();
    try {
      const alice = await createUser(spine, "alice", ["submit_job", "list_supervisors"]);

      await t.step("a token limited to a subset carries only that subset", async () => {
        const created = await api(spine, alice.token, "POST", "/tokens", {
          permissions: ["submit_job"],
          expires_in: "1h",
          description: "ci",
        });
        assertEquals(created.status, 201);
        const narrow = (created.body as { token: string }).token;
        const who = await api(spine, narrow, "GET", "/whoami");
        assertEquals((who.body as { permissions: string[] }).permissions, ["submit_job"]);
        assertEquals((await api(spine, narrow, "GET", "/supervisors")).status, 403);
        assertEquals((await api(spine, alice.token, "GET", "/supervisors")).status, 200);
      });

      await t.step("a token cannot carry a permission its owner lacks", async () => {
        const widened = await api(spine, alice.token, "POST", "/tokens", {
          permissions: ["admin"],
        });
        assertEquals(widened.status, 403);
        assertStringIncludes(
          (widened.body as { error: { message: string } }).error.message,
          "admin",
        );
      });

      await t.step("an expired token is refused", async () => {
        const created = await api(spine, alice.token, "POST", "/tokens", { expires_in: "1s" });
        const shortLived = (created.body as { token: string }).token;
        assertEquals((await api(spine, shortLived, "GET", "/whoami")).status, 200);
        await new Promise((resolve) => setTimeout(resolve, 6_000)); // past expiry and the cache
        assertEquals((await api(spine, shortLived, "GET", "/whoami")).status, 401);
      });

      await t.step("a revoked token is refused at once", async () => {
        const created = await api(spine, alice.token, "POST", "/tokens", {});
        const { token, token_id: tokenId } = created.body as { token: string; token_id: string };
        assertEquals((await api(spine, token, "GET", "/whoami")).status, 200);
        assertEquals((await api(spine, alice.token, "DELETE", `/tokens/${tokenId}`)).status, 200);
        assertEquals((await api(spine, token, "GET", "/whoami")).status, 401);
        const listed = await api(spine, alice.token, "GET", "/tokens");
        const entry =
          (listed.body as { tokens: Array<{ token_id: string; revoked_at: string | null }> })
            .tokens.find((t) => t.token_id === tokenId);
        assert(entry?.revoked_at !== null);
        const other = await createUser(spine, "eve", ["submit_job"]);
        assertEquals((await api(spine, other.token, "DELETE", `/tokens/${tokenId}`)).status, 404);
      });

      await t.step(
        "unknown users and wrong passwords get the same answer; locked users cannot log in",
        async () => {
          const unknown = await api(spine, "", "POST", "/tokens/login", {
            user: "nobody",
            password: "x",
          });
          const wrong = await api(spine, "", "POST", "/tokens/login", {
            user: "alice",
            password: "x",
          });
          assertEquals(unknown.status, 401);
          assertEquals(wrong.status, 401);
          assertEquals(unknown.body, wrong.body);
          await admin(spine, [
            "user",
            "create",
            "bob",
            "--email",
            "bob@example.test",
            "--password",
            "pw-bob",
          ]);
          assertEquals(
            (await api(spine, "", "POST", "/tokens/login", { user: "bob", password: "pw-bob" }))
              .status,
            201,
          );
          await admin(spine, ["user", "lock", "bob"]);
          assertEquals(
            (await api(spine, "", "POST", "/tokens/login", { user: "bob", password: "pw-bob" }))
              .status,
            401,
          );
        },
      );

      await t.step("failed logins are rate-limited per user", async () => {
        await admin(spine, [
          "user",
          "create",
          "carol",
          "--email",
          "carol@example.test",
          "--password",
          "pw-carol",
        ]);
        for (let i = 0; i < 5; i++) {
          assertEquals(
            (await api(spine, "", "POST", "/tokens/login", { user: "carol", password: "bad" }))
              .status,
            401,
          );
        }
        const limited = await fetch(`${spine.url}/api/v1/tokens/login`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ user: "carol", password: "pw-carol" }),
        });
        assertEquals(limited.status, 429);
        assert(Number(limited.headers.get("retry-after")) > 0);
        await limited.body?.cancel();
      });

      await t.step("a rotated supervisor token replaces the old one", async () => {
        const registered = await registerSupervisor(spine, "rotating", ["board:r"]);
        const rotated = await admin(spine, ["supervisor", "rotate-token", "rotating"]) as {
          token: string;
        };
        const old = new ScriptedSupervisor(spine.url, registered.supervisorId, registered.token);
        let refused = false;
        await old.connect().catch(() => (refused = true));
        assertEquals(refused, true);
        const fresh = new ScriptedSupervisor(spine.url, registered.supervisorId, rotated.token);
        await fresh.connect();
        await fresh.close();
      });

      await t.step("no password or token in the switchboard's log", () => {
        for (const secret of ["pw-bob", "pw-carol", alice.token]) {
          assert(
            !spine.switchboard.stderr.includes(secret),
            `secret in log: ${secret.slice(0, 6)}…`,
          );
        }
      });
    } finally {
      await spine.stop();
    }
  },
});
