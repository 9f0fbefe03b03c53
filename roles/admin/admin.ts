/**
 * The code behind `tml admin`: opens the switchboard database (migrating it if needed) and
 * changes users and supervisors. Machine output is JSON on stdout; secrets (passwords, tokens)
 * are never logged, and a token is printed only when no `--token-file` is given.
 */
import { z } from "zod";
import { loadConfig } from "../../lib/config.ts";
import type { Database } from "../../lib/db/database.ts";
import { openSwitchboardDatabase } from "../../lib/db/open.ts";
import { TmlError } from "../../lib/errors.ts";
import {
  createUser,
  grant,
  listUsers,
  requireUser,
  revoke,
  setLocked,
  setPassword,
} from "../../lib/accounts/users.ts";
import {
  listSupervisorRecords,
  registerSupervisor,
  removeSupervisor,
  requireSupervisor,
  rotateSupervisorToken,
} from "../../lib/accounts/supervisors.ts";

const AdminConfig = z.object({
  database_url: z.string().optional(),
  data_dir: z.string().default(".tml-data/switchboard"),
});

export async function runAdmin(
  action: string,
  args: string[],
  options: Record<string, unknown>,
  dbOptions: { databaseUrl?: string; dataDir?: string; config?: string },
): Promise<void> {
  const config = await loadConfig(AdminConfig, {
    strict: false,
    file: dbOptions.config ?? Deno.env.get("TML_CONFIG"),
    flags: { database_url: dbOptions.databaseUrl, data_dir: dbOptions.dataDir },
  });
  const db = await openSwitchboardDatabase({
    databaseUrl: config.database_url,
    dataDir: config.data_dir,
  });
  try {
    const output = await perform(db, action, args, options);
    if (output !== undefined) console.log(JSON.stringify(output));
  } finally {
    await db.close();
  }
}

async function perform(
  db: Database,
  action: string,
  args: string[],
  options: Record<string, unknown>,
): Promise<unknown> {
  switch (action) {
    case "user.create": {
      const user = await createUser(db, {
        name: args[0],
        email: String(options.email),
        password: await readPassword(options),
        userType: options.system === true ? "system" : "normal",
        permissions: (options.grant as string[] | undefined) ?? [],
      });
      return { user_id: user.user_id, name: user.name, email: user.email };
    }
    case "user.list":
      return { users: await listUsers(db) };
    case "user.lock":
    case "user.unlock": {
      const user = await requireUser(db, args[0]);
      await setLocked(db, user.user_id, action === "user.lock");
      return { user_id: user.user_id, locked: action === "user.lock" };
    }
    case "user.set-password": {
      const user = await requireUser(db, args[0]);
      await setPassword(db, user.user_id, await readPassword(options));
      return { user_id: user.user_id };
    }
    case "user.grant":
    case "user.revoke": {
      const user = await requireUser(db, args[0]);
      for (const permission of args.slice(1)) {
        if (action === "user.grant") await grant(db, user.user_id, permission);
        else await revoke(db, user.user_id, permission);
      }
      return {
        user_id: user.user_id,
        permissions: (await listUsers(db)).find((u) => u.user_id === user.user_id)?.permissions,
      };
    }
    case "supervisor.register": {
      const tags = String(options.tags ?? "").split(",").map((tag) => tag.trim()).filter((tag) =>
        tag !== ""
      );
      const { supervisor_id, token } = await registerSupervisor(db, { name: args[0], tags });
      return await tokenOutput({ supervisor_id, name: args[0], tags }, token, options);
    }
    case "supervisor.rotate-token": {
      const supervisor = await requireSupervisor(db, args[0]);
      const token = await rotateSupervisorToken(db, supervisor.supervisor_id);
      return await tokenOutput({ supervisor_id: supervisor.supervisor_id }, token, options);
    }
    case "supervisor.remove": {
      const supervisor = await requireSupervisor(db, args[0]);
      await removeSupervisor(db, supervisor.supervisor_id);
      return { supervisor_id: supervisor.supervisor_id, removed: true };
    }
    case "supervisor.list":
      return {
        supervisors: (await listSupervisorRecords(db)).map((record) => ({
          ...record,
          created_at: record.created_at.toISOString(),
          last_seen_at: record.last_seen_at?.toISOString() ?? null,
        })),
      };
  }
  throw new TmlError("unknown_action", `Unknown admin action "${action}"`, { status: 400 });
}

async function tokenOutput(
  fields: Record<string, unknown>,
  token: string,
  options: Record<string, unknown>,
): Promise<unknown> {
  if (typeof options.tokenFile !== "string") return { ...fields, token };
  await Deno.writeTextFile(options.tokenFile, `${token}\n`, { mode: 0o600 });
  await Deno.chmod(options.tokenFile, 0o600);
  return { ...fields, token_file: options.tokenFile };
}

async function readPassword(options: Record<string, unknown>): Promise<string> {
  if (typeof options.password === "string") return options.password;
  if (options.passwordStdin === true) {
    const text = await new Response(Deno.stdin.readable).text();
    const password = text.replace(/\r?\n$/, "");
    if (password !== "") return password;
  }
  throw new TmlError("missing_password", "Missing password: give --password or --password-stdin", {
    status: 400,
    field: "password",
  });
}
