import { Hono } from "hono";
import { createUser, grant, requireUser, setLocked } from "../../lib/accounts/users.ts";
import { TokenCreated, TokenInfo, TokenList, WhoAmI } from "../../lib/protocol/api.ts";
import { assert, assertEquals, assertStringIncludes } from "../../lib/testing/asserts.ts";
import type { AppEnv } from "./context.ts";
import { errorHandler, notFoundHandler } from "./http_errors.ts";
import { LoginLimiter } from "./login_limiter.ts";
import { openTestDeps, type TestDeps } from "./test_deps.ts";
import { tokenRoutes, whoamiRoutes } from "./token_routes.ts";

const DAY_MS = 86_400_000;
// Response bodies are read field by field; each test parses the ones it checks with zod.
// deno-lint-ignore no-explicit-any
type Json = any;
const WINDOW_MS = 15 * 60_000;

interface Harness {
  deps: TestDeps;
  limiterClock: { now: number };
  call(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; address?: string },
  ): Promise<{ status: number; body: Json; headers: Headers }>;
  login(user: string, password: string, address?: string): Promise<number>;
}

async function harness(): Promise<Harness> {
  const deps = await openTestDeps();
  const limiterClock = { now: Date.now() };
  const limiter = new LoginLimiter(
    { perUser: 5, perAddress: 20, windowMs: WINDOW_MS },
    () => limiterClock.now,
  );
  const app = new Hono<AppEnv>();
  app.onError(errorHandler(deps.log));
  app.notFound(notFoundHandler);
  app.route("/api/v1/tokens", tokenRoutes(deps, limiter));
  app.route("/api/v1/whoami", whoamiRoutes(deps));
  const call: Harness["call"] = async (method, path, options = {}) => {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    // hono/deno's getConnInfo reads the peer address from Deno.serve's handler info.
    const env = {
      remoteAddr: { transport: "tcp", hostname: options.address ?? "192.0.2.1", port: 40000 },
    };
    const response = await app.request(`/api/v1${path}`, {
      method,
      headers,
      body: options.body === undefined
        ? undefined
        : typeof options.body === "string"
        ? options.body
        : JSON.stringify(options.body),
    }, env);
    const text = await response.text();
    return {
      status: response.status,
      body: text === "" ? undefined : JSON.parse(text),
      headers: response.headers,
    };
  };
  return {
    deps,
    limiterClock,
    call,
    login: async (user, password, address) =>
      (await call("POST", "/tokens/login", { body: { user, password }, address })).status,
  };
}

async function addUser(h: Harness, name: string, permissions: string[] = []) {
  return await createUser(h.deps.db, {
    name,
    email: `${name}@example.test`,
    password: `pw-${name}`,
    permissions,
  });
}

async function loginToken(h: Harness, name: string): Promise<TokenCreated> {
  const response = await h.call("POST", "/tokens/login", {
    body: { user: name, password: `pw-${name}` },
  });
  assertEquals(response.status, 201, JSON.stringify(response.body));
  return TokenCreated.parse(response.body);
}

Deno.test({
  name: "tokenRoutes() login: tokens for good passwords, one answer for every failure, limits",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const h = await harness();
    try {
      await addUser(h, "alice", ["submit_job"]);

      await t.step("POST /login by name or email returns a 7-day token that works", async () => {
        const byName = await loginToken(h, "alice");
        const lifetime = Date.parse(byName.expires_at) - Date.now();
        assert(Math.abs(lifetime - 7 * DAY_MS) < 60_000, `lifetime ${lifetime}`);
        assertEquals(byName.permissions, null);
        const who = await h.call("GET", "/whoami", { token: byName.token });
        assertEquals(who.status, 200);
        assertEquals(WhoAmI.parse(who.body).name, "alice");
        assertEquals(who.body.permissions, ["submit_job"]);
        const byEmail = await h.call("POST", "/tokens/login", {
          body: { user: "alice@example.test", password: "pw-alice", expires_in: "1h" },
        });
        assertEquals(byEmail.status, 201);
        const shorter = Date.parse(byEmail.body.expires_at) - Date.now();
        assert(Math.abs(shorter - 3_600_000) < 60_000, `lifetime ${shorter}`);
      });

      await t.step("unknown users, wrong passwords and locked users get one answer", async () => {
        const bob = await addUser(h, "bob");
        await setLocked(h.deps.db, bob.user_id, true);
        const answers = [];
        for (const [user, password] of [["nobody", "x"], ["alice", "x"], ["bob", "pw-bob"]]) {
          const response = await h.call("POST", "/tokens/login", {
            body: { user, password },
            address: `198.51.100.${answers.length}`,
          });
          answers.push([response.status, response.body]);
        }
        assertEquals(answers[0][0], 401);
        assertEquals(answers[1], answers[0]);
        assertEquals(answers[2], answers[0]);
      });

      await t.step("POST /login validates its body and names the field", async () => {
        const missing = await h.call("POST", "/tokens/login", { body: { user: "alice" } });
        assertEquals([missing.status, missing.body.error.field], [400, "password"]);
        const extra = await h.call("POST", "/tokens/login", {
          body: { user: "alice", password: "pw-alice", admin: true },
        });
        assertEquals(extra.status, 400);
        const malformed = await h.call("POST", "/tokens/login", { body: "{" });
        assertEquals([malformed.status, malformed.body.error.code], [400, "invalid_json"]);
        const tooLong = await h.call("POST", "/tokens/login", {
          body: { user: "alice", password: "pw-alice", expires_in: "366d" },
        });
        assertEquals([tooLong.status, tooLong.body.error.field], [400, "expires_in"]);
      });

      await t.step("five failures for a user block it, even with the right password", async () => {
        await addUser(h, "carol");
        for (let i = 0; i < 5; i++) {
          assertEquals(await h.login("carol", "wrong", `203.0.113.${i}`), 401);
        }
        const blocked = await h.call("POST", "/tokens/login", {
          body: { user: "carol@example.test", password: "pw-carol" },
          address: "203.0.113.99",
        });
        assertEquals(blocked.status, 429);
        assertEquals(blocked.body.error.code, "too_many_attempts");
        assertEquals(blocked.headers.get("retry-after"), String(WINDOW_MS / 1000));
        h.limiterClock.now += WINDOW_MS;
        assertEquals(await h.login("carol", "pw-carol"), 201);
      });

      await t.step("a success clears the user's earlier failures", async () => {
        await addUser(h, "dave");
        for (let i = 0; i < 4; i++) assertEquals(await h.login("dave", "wrong"), 401);
        assertEquals(await h.login("dave", "pw-dave"), 201);
        for (let i = 0; i < 4; i++) assertEquals(await h.login("dave", "wrong"), 401);
        assertEquals(await h.login("dave", "pw-dave"), 201);
      });

      await t.step("twenty failures from one address block it for every user", async () => {
        const address = "192.0.2.77";
        for (let i = 0; i < 20; i++) assertEquals(await h.login(`ghost${i}`, "x", address), 401);
        assertEquals(await h.login("alice", "pw-alice", address), 429);
        assertEquals(await h.login("alice", "pw-alice", "192.0.2.78"), 201);
      });

      await t.step("concurrent guesses cannot slip past the limit", async () => {
        await addUser(h, "erin");
        const statuses = await Promise.all(
          Array.from({ length: 12 }, (_, i) => h.login("erin", "wrong", `10.0.0.${i}`)),
        );
        assertEquals(statuses.filter((status) => status === 401).length, 5);
        assertEquals(statuses.filter((status) => status === 429).length, 7);
      });

      await t.step("no password or token appears in a log line", () => {
        const logs = h.deps.logLines.join("\n");
        for (const secret of ["pw-alice", "pw-bob", "pw-carol", "pw-dave"]) {
          assertEquals(logs.includes(secret), false, secret);
        }
        assertStringIncludes(logs, "login failed");
      });
    } finally {
      await h.deps.close();
    }
  },
});

Deno.test({
  name: "tokenRoutes() create, list and revoke tokens; whoamiRoutes() shows the caller",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const h = await harness();
    try {
      await addUser(h, "alice", ["submit_job", "list_supervisors"]);
      await addUser(h, "mallory", ["submit_job"]);
      const root = await addUser(h, "root", ["admin"]);
      const alice = await loginToken(h, "alice");
      const mallory = await loginToken(h, "mallory");
      const admin = await loginToken(h, "root");

      await t.step("every route but login answers 401 without a token", async () => {
        for (
          const [method, path] of [
            ["POST", "/tokens"],
            ["GET", "/tokens"],
            ["DELETE", `/tokens/${alice.token_id}`],
            ["GET", "/whoami"],
          ]
        ) {
          const response = await h.call(method, path, { body: method === "POST" ? {} : undefined });
          assertEquals(response.status, 401, `${method} ${path}`);
          const bad = await h.call(method, path, { token: "x".repeat(172) });
          assertEquals(bad.status, 401, `${method} ${path} with an unknown token`);
        }
      });

      await t.step(
        "POST / creates a 30-day token by default, or a subset with an expiry",
        async () => {
          const plain = await h.call("POST", "/tokens", { token: alice.token, body: {} });
          assertEquals(plain.status, 201);
          const created = TokenCreated.parse(plain.body);
          const lifetime = Date.parse(created.expires_at) - Date.now();
          assert(Math.abs(lifetime - 30 * DAY_MS) < 60_000, `lifetime ${lifetime}`);
          assertEquals(atob(created.token).length, 128);

          const narrow = await h.call("POST", "/tokens", {
            token: alice.token,
            body: { permissions: ["submit_job"], expires_in: "2d", description: "ci" },
          });
          assertEquals(narrow.status, 201);
          const who = await h.call("GET", "/whoami", { token: narrow.body.token });
          assertEquals(who.body.permissions, ["submit_job"]);
          assertEquals(who.body.token_id, narrow.body.token_id);
        },
      );

      await t.step("POST / refuses permissions the owner lacks and bad expiries", async () => {
        const widened = await h.call("POST", "/tokens", {
          token: alice.token,
          body: { permissions: ["admin"] },
        });
        assertEquals([widened.status, widened.body.error.field], [403, "permissions"]);
        assertStringIncludes(widened.body.error.message, '"admin"');
        const unknown = await h.call("POST", "/tokens", {
          token: alice.token,
          body: { permissions: ["root"] },
        });
        assertEquals([unknown.status, unknown.body.error.field], [400, "permissions.0"]);
        const forever = await h.call("POST", "/tokens", {
          token: alice.token,
          body: { expires_in: "400d" },
        });
        assertEquals([forever.status, forever.body.error.field], [400, "expires_in"]);
        const extra = await h.call("POST", "/tokens", {
          token: alice.token,
          body: { user_id: root.user_id },
        });
        assertEquals(extra.status, 400);
      });

      await t.step("a subset token cannot mint a wider or longer-lived token", async () => {
        const narrow = await h.call("POST", "/tokens", {
          token: alice.token,
          body: { permissions: ["submit_job"], expires_in: "1h" },
        });
        const wider = await h.call("POST", "/tokens", {
          token: narrow.body.token,
          body: { permissions: ["list_supervisors"] },
        });
        assertEquals([wider.status, wider.body.error.field], [403, "permissions"]);
        const longer = await h.call("POST", "/tokens", {
          token: narrow.body.token,
          body: { expires_in: "2h" },
        });
        assertEquals([longer.status, longer.body.error.field], [403, "expires_in"]);
        const implicit = await h.call("POST", "/tokens", { token: narrow.body.token, body: {} });
        assertEquals(implicit.status, 201);
        assertEquals(implicit.body.permissions, ["submit_job"]);
        assert(Date.parse(implicit.body.expires_at) <= Date.parse(narrow.body.expires_at));
        const who = await h.call("GET", "/whoami", { token: implicit.body.token });
        assertEquals(who.body.permissions, ["submit_job"]);
      });

      await t.step(
        "GET / lists the caller's tokens without secrets; admins may list anyone's",
        async () => {
          const own = await h.call("GET", "/tokens", { token: alice.token });
          assertEquals(own.status, 200);
          const list = TokenList.parse(own.body);
          assert(list.tokens.length >= 4);
          assert(list.tokens.some((token) => token.token_id === alice.token_id));
          assertEquals(JSON.stringify(own.body).includes(alice.token), false);
          const mine = await h.call("GET", "/tokens", { token: mallory.token });
          assertEquals(mine.body.tokens.map((t: TokenInfo) => t.token_id), [mallory.token_id]);

          const aliceId = (await requireUser(h.deps.db, "alice")).user_id;
          const snooping = await h.call("GET", `/tokens?user_id=${aliceId}`, {
            token: mallory.token,
          });
          assertEquals(snooping.status, 403);
          const asAdmin = await h.call("GET", `/tokens?user_id=${aliceId}`, { token: admin.token });
          assertEquals(asAdmin.body.tokens.length, list.tokens.length);
          const badQuery = await h.call("GET", "/tokens?user_id=alice", { token: admin.token });
          assertEquals([badQuery.status, badQuery.body.error.field], [400, "user_id"]);
        },
      );

      await t.step(
        "DELETE /:id revokes at once; others' tokens look like missing ones",
        async () => {
          const spare = TokenCreated.parse(
            (await h.call("POST", "/tokens", { token: alice.token, body: {} })).body,
          );
          assertEquals((await h.call("GET", "/whoami", { token: spare.token })).status, 200);
          const stolen = await h.call("DELETE", `/tokens/${spare.token_id}`, {
            token: mallory.token,
          });
          assertEquals(stolen.status, 404);
          const missing = await h.call("DELETE", `/tokens/${crypto.randomUUID()}`, {
            token: mallory.token,
          });
          assertEquals(stolen.body.error.code, missing.body.error.code);
          assertEquals((await h.call("GET", "/whoami", { token: spare.token })).status, 200);

          const revoked = await h.call("DELETE", `/tokens/${spare.token_id}`, {
            token: alice.token,
          });
          assertEquals(revoked.status, 200);
          assert(TokenInfo.parse(revoked.body).revoked_at !== null);
          // The principal cache must not keep a revoked token alive.
          assertEquals((await h.call("GET", "/whoami", { token: spare.token })).status, 401);

          const byAdmin = await h.call("DELETE", `/tokens/${mallory.token_id}`, {
            token: admin.token,
          });
          assertEquals(byAdmin.status, 200);
          assertEquals((await h.call("GET", "/whoami", { token: mallory.token })).status, 401);
          const badId = await h.call("DELETE", "/tokens/not-a-uuid", { token: alice.token });
          assertEquals(badId.status, 400);
        },
      );

      await t.step("a grant shows in whoami once the principal cache has expired", async () => {
        const aliceId = (await requireUser(h.deps.db, "alice")).user_id;
        await grant(h.deps.db, aliceId, "list_jobs");
        h.deps.advanceClock(60_000);
        const who = await h.call("GET", "/whoami", { token: alice.token });
        assertEquals(who.body.permissions, ["list_jobs", "list_supervisors", "submit_job"]);
      });

      await t.step("no token appears in a log line", () => {
        const logs = h.deps.logLines.join("\n");
        for (const token of [alice.token, mallory.token, admin.token]) {
          assertEquals(logs.includes(token), false);
        }
        assertStringIncludes(logs, "token revoked");
      });
    } finally {
      await h.deps.close();
    }
  },
});
