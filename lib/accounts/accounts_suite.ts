/**
 * The accounts layer's tests, run against each database backend (PGlite and a real PostgreSQL
 * server) by `accounts_pglite_test.ts` and `accounts_postgres_test.ts`: users, grants, API
 * tokens (storage, subsets, expiry, revocation, locked owners) and supervisor records.
 */
import { argon2id } from "hash-wasm";
import { assert, assertEquals, assertRejects } from "../testing/asserts.ts";
import type { Database } from "../db/database.ts";
import { migrate } from "../db/migrations.ts";
import { SWITCHBOARD_MIGRATIONS } from "../db/migrations/mod.ts";
import { AccountsError } from "./errors.ts";
import { verifyPassword } from "./passwords.ts";
import { tokenHash } from "./secrets.ts";
import {
  authenticateSupervisor,
  listSupervisorRecords,
  registerSupervisor,
  removeSupervisor,
  requireSupervisor,
  rotateSupervisorToken,
} from "./supervisors.ts";
import { authenticateToken, createToken, listTokens, revokeToken } from "./tokens.ts";
import {
  createUser,
  findUser,
  grant,
  listUsers,
  permissionsOf,
  requireUser,
  revoke,
  setLocked,
  setPassword,
} from "./users.ts";

const DAY_MS = 86_400_000;
const SUPERVISOR_ID = "00000000-0000-4000-8000-0000000000aa";

export function runAccountsSuite(
  backend: string,
  open: () => Promise<{ db: Database; cleanup(): Promise<void> }>,
): void {
  Deno.test({
    name: `accounts on ${backend}: users, grants, API tokens and supervisor records`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      const { db, cleanup } = await open();
      try {
        await migrate(db, SWITCHBOARD_MIGRATIONS);
        await runSteps(t, db);
      } finally {
        await cleanup();
      }
    },
  });
}

async function runSteps(t: Deno.TestContext, db: Database): Promise<void> {
  const user = (name: string, permissions: string[] = []) =>
    createUser(db, { name, email: `${name}@example.test`, password: `pw-${name}`, permissions });

  await t.step("createUser() stores an Argon2id hash, never the password", async () => {
    const created = await user("alice", ["submit_job", "list_jobs", "submit_job"]);
    assert(created.password_hash.startsWith("$argon2id$v=19$"));
    assert(!created.password_hash.includes("pw-alice"));
    assertEquals(await verifyPassword(created.password_hash, "pw-alice"), true);
    assertEquals(created.user_type, "normal");
    assertEquals(created.locked, false);
    assertEquals(await permissionsOf(db, created.user_id), ["list_jobs", "submit_job"]);
  });

  await t.step("createUser() names the clashing column and changes nothing", async () => {
    const byName = await assertRejects(
      () => createUser(db, { name: "alice", email: "other@example.test", password: "x" }),
      AccountsError,
      'Cannot create user "alice": a user with that name already exists',
    );
    assertEquals([byName.status, byName.field], [409, "name"]);
    const byEmail = await assertRejects(
      () => createUser(db, { name: "alice2", email: "alice@example.test", password: "x" }),
      AccountsError,
      "a user with that email already exists",
    );
    assertEquals(byEmail.field, "email");
    assertEquals(await findUser(db, "alice2"), undefined);
  });

  await t.step("createUser() refuses bad input before writing anything", async () => {
    const valid = { name: "mallory", email: "m@example.test", password: "x", permissions: [] };
    const cases: Array<[Parameters<typeof createUser>[1], string]> = [
      [{ ...valid, name: "mal lory" }, "name"],
      [{ ...valid, email: "not-an-email" }, "email"],
      [{ ...valid, password: "" }, "password"],
      [{ ...valid, permissions: ["submit_job", "root"] }, "permissions"],
    ];
    for (const [input, field] of cases) {
      const error = await assertRejects(() => createUser(db, input), AccountsError);
      assertEquals([error.status, error.field], [400, field]);
    }
    assertEquals(await findUser(db, "mallory"), undefined);
  });

  await t.step("findUser() finds by name or email; a name beats another user's email", async () => {
    const alice = await requireUser(db, "alice");
    assertEquals((await findUser(db, "alice@example.test"))?.user_id, alice.user_id);
    // Operators insert users with SQL, with any name and any Argon2 parameters.
    const phc = await argon2id({
      password: "operator-pw",
      salt: crypto.getRandomValues(new Uint8Array(16)),
      memorySize: 65_536,
      iterations: 3,
      parallelism: 4,
      hashLength: 32,
      outputType: "encoded",
    });
    await db.query(
      `INSERT INTO users (name, email, password_hash, user_type) VALUES ($1, $2, $3, 'system')`,
      ["bob@example.test", "robert@example.test", phc],
    );
    await user("bob");
    const found = await findUser(db, "bob@example.test");
    assertEquals(found?.email, "robert@example.test");
    assertEquals(await verifyPassword(found!.password_hash, "operator-pw"), true);
    await assertRejects(
      () => requireUser(db, "nobody"),
      AccountsError,
      'Cannot find user "nobody"',
    );
  });

  await t.step(
    "grant() and revoke() change permissions; grant() checks the vocabulary",
    async () => {
      const carol = await user("carol");
      await grant(db, carol.user_id, `read_job_status:${SUPERVISOR_ID}`);
      await grant(db, carol.user_id, "run_job_on_supervisor:*");
      await grant(db, carol.user_id, "run_job_on_supervisor:*");
      await assertRejects(
        () => grant(db, carol.user_id, "everything"),
        AccountsError,
        "everything",
      );
      assertEquals(await permissionsOf(db, carol.user_id), [
        `read_job_status:${SUPERVISOR_ID}`,
        "run_job_on_supervisor:*",
      ]);
      await revoke(db, carol.user_id, "run_job_on_supervisor:*");
      await revoke(db, carol.user_id, "never-granted");
      assertEquals(await permissionsOf(db, carol.user_id), [`read_job_status:${SUPERVISOR_ID}`]);
    },
  );

  await t.step(
    "an AccountsError thrown in a transaction keeps its type and rolls back",
    async () => {
      const carol = await requireUser(db, "carol");
      const error = await assertRejects(
        () =>
          db.transaction(async (tx) => {
            await grant(tx, carol.user_id, "list_jobs");
            await grant(tx, carol.user_id, "superuser");
          }),
        AccountsError,
        '"superuser"',
      );
      assertEquals([error.code, error.status], ["invalid_permission", 400]);
      assertEquals(await permissionsOf(db, carol.user_id), [`read_job_status:${SUPERVISOR_ID}`]);
    },
  );

  await t.step("listUsers() shows permissions and no password hash", async () => {
    const users = await listUsers(db);
    assertEquals(users.map((u) => u.name), ["alice", "bob", "bob@example.test", "carol"]);
    const alice = users.find((u) => u.name === "alice")!;
    assertEquals(alice.permissions, ["list_jobs", "submit_job"]);
    assertEquals("password_hash" in alice, false);
    assertEquals(users.find((u) => u.name === "bob")!.permissions, []);
  });

  await t.step(
    "createToken() returns 128 random bytes in base64 and stores only the SHA-256",
    async () => {
      const alice = await requireUser(db, "alice");
      const { token, record } = await createToken(db, {
        userId: alice.user_id,
        expiresInMs: DAY_MS,
      });
      assertEquals(atob(token).length, 128);
      const [row] = await db.query<Record<string, unknown>>(
        `SELECT * FROM api_tokens WHERE token_id = $1`,
        [record.token_id],
      );
      assertEquals(row.token_hash, tokenHash(token));
      assertEquals(row.token_hash, await sha256Hex(token));
      assert(!JSON.stringify(row).includes(token));
      const expires = record.expires_at.getTime() - record.created_at.getTime();
      assert(Math.abs(expires - DAY_MS) < 60_000, `expiry ${expires} ms`);
      assertEquals(record.permissions, null);
    },
  );

  await t.step(
    "authenticateToken() gives the owner and the owner's current permissions",
    async () => {
      const alice = await requireUser(db, "alice");
      const { token, record } = await createToken(db, {
        userId: alice.user_id,
        expiresInMs: DAY_MS,
      });
      const principal = await authenticateToken(db, token);
      assertEquals(principal, {
        userId: alice.user_id,
        name: "alice",
        email: "alice@example.test",
        tokenId: record.token_id,
        permissions: ["list_jobs", "submit_job"],
        tokenSubset: null,
        tokenExpiresAt: record.expires_at,
      });
      await revoke(db, alice.user_id, "list_jobs");
      assertEquals((await authenticateToken(db, token))?.permissions, ["submit_job"]);
      await grant(db, alice.user_id, "list_jobs");
      assertEquals(await authenticateToken(db, `${token}x`), undefined);
      assertEquals(await authenticateToken(db, ""), undefined);
    },
  );

  await t.step(
    "a token's permission subset narrows its owner's and never widens them",
    async () => {
      const alice = await requireUser(db, "alice");
      const narrow = await createToken(db, {
        userId: alice.user_id,
        expiresInMs: DAY_MS,
        permissions: ["submit_job"],
        description: "ci",
      });
      assertEquals(narrow.record.permissions, ["submit_job"]);
      assertEquals(narrow.record.description, "ci");
      assertEquals((await authenticateToken(db, narrow.token))?.permissions, ["submit_job"]);
      const widened = await assertRejects(
        () =>
          createToken(db, {
            userId: alice.user_id,
            expiresInMs: DAY_MS,
            permissions: ["submit_job", "admin"],
          }),
        AccountsError,
        'Cannot create token: permission "admin" is not held by its owner',
      );
      assertEquals([widened.status, widened.field], [403, "permissions"]);
      // Losing a permission later takes it from every token that carried it.
      await revoke(db, alice.user_id, "submit_job");
      assertEquals((await authenticateToken(db, narrow.token))?.permissions, []);
      await grant(db, alice.user_id, "submit_job");
      // An admin owner may hand out any permission, including per-id ones.
      const root = await user("root", ["admin"]);
      const scoped = await createToken(db, {
        userId: root.user_id,
        expiresInMs: DAY_MS,
        permissions: [`stop_job:${SUPERVISOR_ID}`],
      });
      assertEquals((await authenticateToken(db, scoped.token))?.permissions, [
        `stop_job:${SUPERVISOR_ID}`,
      ]);
    },
  );

  await t.step("a token made with a limited token stays within it", async () => {
    const alice = await requireUser(db, "alice");
    const made = await createToken(db, {
      userId: alice.user_id,
      expiresInMs: DAY_MS,
      permissions: ["submit_job"],
    });
    const creator = (await authenticateToken(db, made.token))!;
    assertEquals(creator.tokenSubset, ["submit_job"]);
    const inherited = await createToken(db, {
      userId: alice.user_id,
      expiresInMs: DAY_MS / 2,
      creator,
    });
    assertEquals(inherited.record.permissions, ["submit_job"]);
    await assertRejects(
      () =>
        createToken(db, {
          userId: alice.user_id,
          expiresInMs: DAY_MS,
          permissions: ["list_jobs"],
          creator,
        }),
      AccountsError,
      'permission "list_jobs" is not held by the token used to create it',
    );
    await assertRejects(
      () => createToken(db, { userId: alice.user_id, expiresInMs: 2 * DAY_MS, creator }),
      AccountsError,
      "cannot create one that outlives it",
    );
    const shortened = await createToken(db, {
      userId: alice.user_id,
      expiresInMs: 30 * DAY_MS,
      creator,
      shortenToCreator: true,
    });
    assertEquals(shortened.record.expires_at.getTime(), creator.tokenExpiresAt.getTime());
    // A token carrying all of its owner's permissions makes tokens as the owner would.
    const short = await createToken(db, { userId: alice.user_id, expiresInMs: 60_000 });
    const full = (await authenticateToken(db, short.token))!;
    const longer = await createToken(db, {
      userId: alice.user_id,
      expiresInMs: 30 * DAY_MS,
      creator: full,
    });
    assertEquals(longer.record.permissions, null);
  });

  await t.step("createToken() refuses an expiry outside 1 s .. 365 days", async () => {
    const alice = await requireUser(db, "alice");
    for (const expiresInMs of [0, -1, 366 * DAY_MS, Number.NaN]) {
      const error = await assertRejects(
        () => createToken(db, { userId: alice.user_id, expiresInMs }),
        AccountsError,
        "between 1 s and 365 days",
      );
      assertEquals(error.field, "expires_in");
    }
    await createToken(db, { userId: alice.user_id, expiresInMs: 365 * DAY_MS });
  });

  await t.step("an expired token authenticates no one", async () => {
    const alice = await requireUser(db, "alice");
    const { token, record } = await createToken(db, { userId: alice.user_id, expiresInMs: DAY_MS });
    await db.query(
      `UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE token_id = $1`,
      [
        record.token_id,
      ],
    );
    assertEquals(await authenticateToken(db, token), undefined);
  });

  await t.step(
    "revokeToken() ends a token at once and keeps the first revocation time",
    async () => {
      const alice = await requireUser(db, "alice");
      const { token, record } = await createToken(db, {
        userId: alice.user_id,
        expiresInMs: DAY_MS,
      });
      const first = await revokeToken(db, record.token_id);
      assert(first?.revoked_at instanceof Date);
      assertEquals(await authenticateToken(db, token), undefined);
      const again = await revokeToken(db, record.token_id);
      assertEquals(again?.revoked_at?.getTime(), first.revoked_at.getTime());
      assertEquals(await revokeToken(db, crypto.randomUUID()), undefined);
    },
  );

  await t.step("a locked user's tokens stop working and work again after unlocking", async () => {
    const carol = await requireUser(db, "carol");
    const { token } = await createToken(db, { userId: carol.user_id, expiresInMs: DAY_MS });
    await setLocked(db, carol.user_id, true);
    assertEquals((await requireUser(db, "carol")).locked, true);
    assertEquals(await authenticateToken(db, token), undefined);
    await setLocked(db, carol.user_id, false);
    assertEquals((await authenticateToken(db, token))?.name, "carol");
  });

  await t.step("setPassword() replaces the hash", async () => {
    const carol = await requireUser(db, "carol");
    await setPassword(db, carol.user_id, "new secret");
    const hash = (await requireUser(db, "carol")).password_hash;
    assertEquals(await verifyPassword(hash, "new secret"), true);
    assertEquals(await verifyPassword(hash, "pw-carol"), false);
    await assertRejects(() => setPassword(db, carol.user_id, ""), AccountsError, "1-1024");
  });

  await t.step("listTokens() lists one user's tokens, newest first, without secrets", async () => {
    const dave = await user("dave");
    const a = await createToken(db, { userId: dave.user_id, expiresInMs: DAY_MS });
    const b = await createToken(db, { userId: dave.user_id, expiresInMs: DAY_MS });
    const tokens = await listTokens(db, dave.user_id);
    assertEquals(
      new Set(tokens.map((token) => token.token_id)),
      new Set([a.record.token_id, b.record.token_id]),
    );
    assertEquals(tokens.every((token) => token.user_id === dave.user_id), true);
    assert(!JSON.stringify(tokens).includes(a.token) && !JSON.stringify(tokens).includes(b.token));
  });

  await t.step("registerSupervisor() returns the token once and stores its SHA-256", async () => {
    const { supervisor_id: id, token } = await registerSupervisor(db, {
      name: "lab1-nrf",
      tags: ["board:nrf52840dk", "site:lab1", "board:nrf52840dk"],
    });
    assertEquals(atob(token).length, 128);
    const [row] = await db.query<Record<string, unknown>>(
      `SELECT * FROM supervisors WHERE supervisor_id = $1`,
      [id],
    );
    assertEquals(row.token_hash, tokenHash(token));
    assertEquals(row.tags, ["board:nrf52840dk", "site:lab1"]);
    const found = await authenticateSupervisor(db, token);
    assertEquals([found?.supervisor_id, found?.name], [id, "lab1-nrf"]);
    assertEquals(await authenticateSupervisor(db, "nope"), undefined);
    assertEquals((await requireSupervisor(db, id.toUpperCase())).name, "lab1-nrf");
    assertEquals((await requireSupervisor(db, "lab1-nrf")).supervisor_id, id);
  });

  await t.step("registerSupervisor() refuses taken names, bad names and bad tags", async () => {
    const taken = await assertRejects(
      () => registerSupervisor(db, { name: "lab1-nrf", tags: [] }),
      AccountsError,
      'Cannot register supervisor "lab1-nrf": the name is taken',
    );
    assertEquals(taken.status, 409);
    for (const name of ["", "has space", "-dash", SUPERVISOR_ID]) {
      const error = await assertRejects(
        () => registerSupervisor(db, { name, tags: [] }),
        AccountsError,
      );
      assertEquals(error.field, "name");
    }
    await assertRejects(
      () => registerSupervisor(db, { name: "ok", tags: ["board nrf"] }),
      AccountsError,
      'invalid tag "board nrf"',
    );
    assertEquals((await listSupervisorRecords(db)).map((s) => s.name), ["lab1-nrf"]);
  });

  await t.step("rotateSupervisorToken() ends the old token at once", async () => {
    const { supervisor_id: id, token: old } = await registerSupervisor(db, {
      name: "rotating",
      tags: [],
    });
    const fresh = await rotateSupervisorToken(db, id);
    assert(fresh !== old);
    assertEquals(await authenticateSupervisor(db, old), undefined);
    assertEquals((await authenticateSupervisor(db, fresh))?.supervisor_id, id);
    await assertRejects(
      () => rotateSupervisorToken(db, crypto.randomUUID()),
      AccountsError,
      "Cannot find supervisor",
    );
  });

  await t.step("removeSupervisor() refuses while it holds an unfinished job", async () => {
    const { supervisor_id: id, token } = await registerSupervisor(db, { name: "busy", tags: [] });
    const owner = await requireUser(db, "alice");
    const jobId = crypto.randomUUID();
    await db.query(
      `INSERT INTO jobs (job_id, owner_id, image_id, tag_config, parameters, ssh_keys,
         restart_count, timeout_ms, queue_timeout_ms, run_permissions, state, supervisor_id)
       VALUES ($1, $2, $3, '', '{}'::jsonb, '{}', 0, 1000, 1000, '{}', 'running', $4)`,
      [jobId, owner.user_id, "a".repeat(64), id],
    );
    await assertRejects(
      () => removeSupervisor(db, id),
      AccountsError,
      `Cannot remove supervisor "${id}": it holds unfinished job "${jobId}"`,
    );
    await db.query(`UPDATE jobs SET state = 'terminated' WHERE job_id = $1`, [jobId]);
    await removeSupervisor(db, id);
    assertEquals(await authenticateSupervisor(db, token), undefined);
    const [job] = await db.query<{ supervisor_id: string | null }>(
      `SELECT supervisor_id FROM jobs WHERE job_id = $1`,
      [jobId],
    );
    assertEquals(job.supervisor_id, null);
    await assertRejects(() => removeSupervisor(db, id), AccountsError, "Cannot find supervisor");
  });
}

/** An independent SHA-256 (WebCrypto), to check the stored hash is what the spec says. */
async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
