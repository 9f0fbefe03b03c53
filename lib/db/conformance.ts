/**
 * The conformance suite both database backends must pass: the same values for the same SQL,
 * transactions that commit or roll back whole, row locks that serialise writers, migrations
 * that are ordered, recorded, idempotent and atomic, and the operator-facing `users` tables.
 */
import { assert, assertEquals, assertRejects } from "../testing/asserts.ts";
import { type Database, DatabaseError } from "./database.ts";
import { migrate } from "./migrations.ts";
import { SWITCHBOARD_MIGRATIONS } from "./migrations/mod.ts";

export function runDatabaseConformance(
  name: string,
  open: () => Promise<{ db: Database; cleanup(): Promise<void> }>,
): void {
  Deno.test({
    name: `${name}: database conformance`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      const { db, cleanup } = await open();
      try {
        await migrate(db, SWITCHBOARD_MIGRATIONS);

        await t.step("values round-trip as the same JavaScript types", async () => {
          const [row] = await db.query<Record<string, unknown>>(
            `SELECT 1::int8 AS big, 2::int4 AS small, 3.5::numeric AS num, true AS yes,
              '2026-01-02T03:04:05Z'::timestamptz AS at, '{"a":[1,2]}'::jsonb AS doc,
              ARRAY['x','y']::text[] AS list, '\\x0102'::bytea AS bytes, NULL::text AS nothing,
              count(*) AS counted, $1::jsonb AS param_doc, $2::text[] AS param_list,
              gen_random_uuid() AS id`,
            [JSON.stringify({ k: "v" }), ["p", "q"]],
          );
          assertEquals(row.big, 1);
          assertEquals(row.small, 2);
          assertEquals(row.num, 3.5);
          assertEquals(row.yes, true);
          assertEquals((row.at as Date).toISOString(), "2026-01-02T03:04:05.000Z");
          assertEquals(row.doc, { a: [1, 2] });
          assertEquals(row.list, ["x", "y"]);
          assertEquals([...(row.bytes as Uint8Array)], [1, 2]);
          assertEquals(row.nothing, null);
          assertEquals(row.counted, 1);
          assertEquals(row.param_doc, { k: "v" });
          assertEquals(row.param_list, ["p", "q"]);
          assert(typeof row.id === "string" && /^[0-9a-f-]{36}$/.test(row.id as string));
        });

        await t.step("a transaction that throws leaves nothing behind", async () => {
          await db.query(`CREATE TABLE conformance_items (id int PRIMARY KEY, note text)`);
          await assertRejects(
            () =>
              db.transaction(async (tx) => {
                await tx.query(`INSERT INTO conformance_items VALUES (1, 'a')`);
                throw new Error("boom");
              }),
            Error,
            "boom",
          );
          assertEquals(await db.query(`SELECT * FROM conformance_items`), []);
          await db.transaction(async (tx) => {
            await tx.query(`INSERT INTO conformance_items VALUES (1, 'a')`);
          });
          assertEquals((await db.query(`SELECT note FROM conformance_items`)).length, 1);
        });

        await t.step("unique violations map to DatabaseError unique_violation", async () => {
          const error = await assertRejects(
            () => db.query(`INSERT INTO conformance_items VALUES (1, 'dup')`),
            DatabaseError,
          );
          assertEquals(error.code, "unique_violation");
          assertEquals(error.sqlState, "23505");
        });

        await t.step("concurrent read-modify-write under FOR UPDATE loses no update", async () => {
          await db.query(`CREATE TABLE conformance_counter (id int PRIMARY KEY, n int NOT NULL)`);
          await db.query(`INSERT INTO conformance_counter VALUES (1, 0)`);
          await Promise.all(Array.from({ length: 20 }, () =>
            db.transaction(async (tx) => {
              const [row] = await tx.query<{ n: number }>(
                `SELECT n FROM conformance_counter WHERE id = 1 FOR UPDATE`,
              );
              await tx.query(`UPDATE conformance_counter SET n = $1 WHERE id = 1`, [row.n + 1]);
            })));
          const [row] = await db.query<{ n: number }>(`SELECT n FROM conformance_counter`);
          assertEquals(row.n, 20);
          const skipped = await db.query(
            `SELECT id FROM conformance_counter FOR UPDATE SKIP LOCKED`,
          );
          assertEquals(skipped.length, 1);
        });

        await t.step("migrations are recorded, ordered and idempotent", async () => {
          const again = await migrate(db, SWITCHBOARD_MIGRATIONS);
          assertEquals(again.applied, []);
          const rows = await db.query<{ version: number }>(
            `SELECT version FROM schema_migrations ORDER BY version`,
          );
          assertEquals(rows.map((r) => r.version), SWITCHBOARD_MIGRATIONS.map((m) => m.version));
        });

        await t.step("a failing migration rolls back entirely", async () => {
          const broken = [...SWITCHBOARD_MIGRATIONS, {
            version: 900,
            name: "broken",
            sql: `CREATE TABLE half_done (id int); SELECT no_such_function();`,
          }];
          await assertRejects(() => migrate(db, broken), DatabaseError);
          const tables = await db.query(
            `SELECT 1 FROM information_schema.tables WHERE table_name = 'half_done'`,
          );
          assertEquals(tables, []);
          assertEquals(await db.query(`SELECT 1 FROM schema_migrations WHERE version = 900`), []);
        });

        await t.step("a database with a newer schema is refused", async () => {
          await db.query(`INSERT INTO schema_migrations (version, name) VALUES (901, 'future')`);
          const error = await assertRejects(
            () => migrate(db, SWITCHBOARD_MIGRATIONS),
            DatabaseError,
          );
          assertEquals(error.code, "schema_too_new");
          await db.query(`DELETE FROM schema_migrations WHERE version = 901`);
        });

        await t.step("operators' SQL for users and privileges works verbatim", async () => {
          await db.query(
            `INSERT INTO tml_switchboard.users (user_id, name, email, password_hash, user_type, locked)
             VALUES ('5b3f3e2a-8a51-4f5e-9b8c-0d6c2f6e7a10', 'operator', 'op@example.test',
               '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g', 'normal', false)`,
          );
          await db.query(
            `INSERT INTO tml_switchboard.user_privileges (user_id, permission)
             VALUES ('5b3f3e2a-8a51-4f5e-9b8c-0d6c2f6e7a10', 'admin')`,
          );
          const duplicate = await assertRejects(() =>
            db.query(
              `INSERT INTO tml_switchboard.users (name, email, password_hash) VALUES ('operator', 'other@example.test', 'x')`,
            ), DatabaseError);
          assertEquals(duplicate.code, "unique_violation");
          await db.query(`DELETE FROM tml_switchboard.users WHERE name = 'operator'`);
          assertEquals(await db.query(`SELECT * FROM user_privileges`), []);
        });
      } finally {
        await cleanup();
      }
    },
  });
}
