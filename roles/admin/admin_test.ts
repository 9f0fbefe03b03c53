/**
 * `tml admin` as operators run it: real `tml` processes against a PGlite data directory and
 * against a real PostgreSQL server, checked through the database afterwards.
 */
import { authenticateSupervisor } from "../../lib/accounts/supervisors.ts";
import { findUser } from "../../lib/accounts/users.ts";
import { verifyPassword } from "../../lib/accounts/passwords.ts";
import { openSwitchboardDatabase } from "../../lib/db/open.ts";
import { assert, assertEquals, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { startPostgresServer } from "../../tests/support/postgres_server.ts";
import { runTml, type TmlRunResult } from "../../tests/support/tml_process.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

interface Target {
  /** Runs `tml admin ARGS` against the target database. */
  admin(args: string[], stdin?: string): Promise<TmlRunResult>;
  databaseUrl?: string;
  dataDir: string;
}

function adminScript(backend: string, open: () => Promise<Target & { cleanup(): Promise<void> }>) {
  Deno.test({
    name: `tml admin on ${backend}: users, grants, passwords and supervisors`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      const target = await open();
      const secrets: string[] = [];
      const ok = async (args: string[], stdin?: string): Promise<Json> => {
        const result = await target.admin(args, stdin);
        assertEquals(result.code, 0, `tml admin ${args.join(" ")}:\n${result.stderr}`);
        for (const secret of secrets) {
          assert(!result.stderr.includes(secret), `secret on stderr of ${args.join(" ")}`);
        }
        return JSON.parse(result.stdout);
      };
      const fails = async (args: string[], code: number, message: string, stdin?: string) => {
        const result = await target.admin(args, stdin);
        assertEquals(result.code, code, `${args.join(" ")}: ${result.stderr}`);
        assertStringIncludes(result.stderr, message);
        assertEquals(result.stdout, "");
      };
      const inDatabase = async <T>(fn: (db: Json) => Promise<T>): Promise<T> => {
        const db = await openSwitchboardDatabase({
          databaseUrl: target.databaseUrl,
          dataDir: target.dataDir,
        });
        try {
          return await fn(db);
        } finally {
          await db.close();
        }
      };
      try {
        await t.step(
          "user create reads the password from stdin and grants permissions",
          async () => {
            secrets.push("first secret pw");
            const created = await ok(
              [
                "user",
                "create",
                "alice",
                "--email",
                "alice@example.test",
                "--password-stdin",
                "--grant",
                "submit_job",
                "run_job_on_supervisor:*",
              ],
              "first secret pw\n",
            );
            assertEquals(created.name, "alice");
            assertEquals(created.permissions, ["run_job_on_supervisor:*", "submit_job"]);
            const hash = await inDatabase(async (db) =>
              (await findUser(db, "alice"))!.password_hash
            );
            assertEquals(await verifyPassword(hash, "first secret pw"), true);
          },
        );

        await t.step("user create refuses a taken name and a missing password", async () => {
          await fails(
            ["user", "create", "alice", "--email", "other@example.test", "--password", "x"],
            1,
            'tml: Cannot create user "alice": a user with that name already exists',
          );
          await fails(
            ["user", "create", "bob", "--email", "bob@example.test"],
            2,
            "Missing password",
          );
          await fails(
            ["user", "create", "bob", "--email", "bob@example.test", "--password-stdin"],
            2,
            "password",
            "",
          );
        });

        await t.step("user grant and revoke change permissions all or nothing", async () => {
          const granted = await ok(["user", "grant", "alice", "list_jobs", "list_supervisors"]);
          assertEquals(granted.permissions, [
            "list_jobs",
            "list_supervisors",
            "run_job_on_supervisor:*",
            "submit_job",
          ]);
          await fails(["user", "grant", "alice", "admin", "superuser"], 2, '"superuser"');
          const revoked = await ok(["user", "revoke", "alice@example.test", "list_jobs"]);
          assertEquals(revoked.permissions, [
            "list_supervisors",
            "run_job_on_supervisor:*",
            "submit_job",
          ]);
          await fails(["user", "grant", "nobody", "admin"], 1, 'Cannot find user "nobody"');
        });

        await t.step("user lock, unlock, set-password and list", async () => {
          assertEquals((await ok(["user", "lock", "alice"])).locked, true);
          let listed = await ok(["user", "list"]);
          assertEquals(listed.users.map((u: Json) => [u.name, u.locked]), [["alice", true]]);
          assertEquals((await ok(["user", "unlock", "alice"])).locked, false);
          secrets.push("second secret pw");
          await ok(["user", "set-password", "alice", "--password-stdin"], "second secret pw\n");
          const hash = await inDatabase(async (db) => (await findUser(db, "alice"))!.password_hash);
          assertEquals(await verifyPassword(hash, "second secret pw"), true);
          assertEquals(await verifyPassword(hash, "first secret pw"), false);
          listed = await ok(["user", "list"]);
          assertEquals(listed.users[0].locked, false);
          assertEquals("password_hash" in listed.users[0], false);
        });

        await t.step(
          "supervisor register prints the token once, or writes it mode 0600",
          async () => {
            const printed = await ok([
              "supervisor",
              "register",
              "lab1",
              "--tags",
              "board:a, site:b",
            ]);
            assertEquals(printed.tags, ["board:a", "site:b"]);
            assertEquals(atob(printed.token).length, 128);
            secrets.push(printed.token);

            const tokenFile = `${target.dataDir}/lab2.token`;
            await Deno.writeTextFile(tokenFile, "stale\n", { mode: 0o644 });
            const written = await ok(["supervisor", "register", "lab2", "--token-file", tokenFile]);
            assertEquals("token" in written, false);
            assertEquals(written.token_file, tokenFile);
            assertEquals((await Deno.stat(tokenFile)).mode! & 0o777, 0o600);
            const token = (await Deno.readTextFile(tokenFile)).trim();
            secrets.push(token);
            const found = await inDatabase((db) => authenticateSupervisor(db, token));
            assertEquals(found?.supervisor_id, written.supervisor_id);
          },
        );

        await t.step("supervisor rotate-token replaces the token; remove and list", async () => {
          const tokenFile = `${target.dataDir}/lab2.token`;
          const old = (await Deno.readTextFile(tokenFile)).trim();
          await ok(["supervisor", "rotate-token", "lab2", "--token-file", tokenFile]);
          const fresh = (await Deno.readTextFile(tokenFile)).trim();
          secrets.push(fresh);
          assert(fresh !== old);
          await inDatabase(async (db) => {
            assertEquals(await authenticateSupervisor(db, old), undefined);
            assertEquals((await authenticateSupervisor(db, fresh))?.name, "lab2");
          });
          const listed = await ok(["supervisor", "list"]);
          assertEquals(listed.supervisors.map((s: Json) => s.name), ["lab1", "lab2"]);
          const lab1 = listed.supervisors[0].supervisor_id;
          assertEquals(await ok(["supervisor", "remove", lab1]), {
            supervisor_id: lab1,
            removed: true,
          });
          await fails(["supervisor", "remove", lab1], 1, `Cannot find supervisor "${lab1}"`);
          await fails(["supervisor", "register", "lab2"], 1, "the name is taken");
          assertEquals((await ok(["supervisor", "list"])).supervisors.length, 1);
        });
      } finally {
        await target.cleanup();
      }
    },
  });
}

adminScript("PGlite (data dir from TML_DATA_DIR)", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tml-admin-" });
  return {
    dataDir,
    admin: (args, stdin) => runTml(["admin", ...args], { stdin, env: { TML_DATA_DIR: dataDir } }),
    cleanup: () => Deno.remove(dataDir, { recursive: true }),
  };
});

adminScript("PostgreSQL (--database-url)", async () => {
  const server = await startPostgresServer();
  const dataDir = await Deno.makeTempDir({ prefix: "tml-admin-" });
  return {
    dataDir,
    databaseUrl: server.url,
    admin: (args, stdin) => runTml(["admin", "--database-url", server.url, ...args], { stdin }),
    async cleanup() {
      await server.stop();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
});
