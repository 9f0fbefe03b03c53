/**
 * The code behind `tml admin`: opens the switchboard database (migrating it if needed) and
 * changes users and supervisors. Results are JSON on stdout, messages go to stderr; passwords
 * and tokens are never logged, and a token is printed only when no `--token-file` is given.
 */
import { z } from "zod";
import { loadConfig } from "../../lib/config.ts";
import type { Database } from "../../lib/db/database.ts";
import { openSwitchboardDatabase } from "../../lib/db/open.ts";
import { TmlError } from "../../lib/errors.ts";
import { note, printJson, printResult } from "../../lib/cli/output.ts";
import {
  createUser,
  grant,
  listUsers,
  permissionsOf,
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

export type AdminAction =
  | "user.create"
  | "user.list"
  | "user.lock"
  | "user.unlock"
  | "user.set-password"
  | "user.grant"
  | "user.revoke"
  | "supervisor.register"
  | "supervisor.rotate-token"
  | "supervisor.remove"
  | "supervisor.list";

/** The switchboard's database settings; the rest of its config file is ignored. */
const AdminConfig = z.object({
  database_url: z.string().optional(),
  data_dir: z.string().default(".tml-data/switchboard"),
});

type Options = Record<string, unknown>;

export async function runAdmin(
  action: AdminAction,
  args: string[],
  options: Options,
  flags: { databaseUrl?: string; dataDir?: string; config?: string },
): Promise<void> {
  const config = await loadConfig(AdminConfig, {
    strict: false,
    file: flags.config ?? Deno.env.get("TML_CONFIG"),
    flags: { database_url: flags.databaseUrl, data_dir: flags.dataDir },
  });
  // Read the password before opening the database, so a missing one fails fast.
  const password = action === "user.create" || action === "user.set-password"
    ? await readPassword(options)
    : undefined;
  const db = await openSwitchboardDatabase({
    databaseUrl: config.database_url,
    dataDir: config.data_dir,
  });
  try {
    await perform(db, action, args, options, password);
  } finally {
    await db.close();
  }
}

async function perform(
  db: Database,
  action: AdminAction,
  args: string[],
  options: Options,
  password: string | undefined,
): Promise<void> {
  switch (action) {
    case "user.create": {
      const user = await createUser(db, {
        name: args[0],
        email: String(options.email),
        password: password!,
        userType: options.system === true ? "system" : "normal",
        permissions: (options.grant as string[] | undefined) ?? [],
      });
      note(`Created user "${user.name}"`);
      return printJson({
        user_id: user.user_id,
        name: user.name,
        email: user.email,
        user_type: user.user_type,
        permissions: await permissionsOf(db, user.user_id),
      });
    }
    case "user.list": {
      const users = await listUsers(db);
      return printResult(options, { users }, {
        head: ["name", "email", "type", "locked", "permissions", "user id"],
        rows: users.map((
          u,
        ) => [
          u.name,
          u.email,
          u.user_type,
          u.locked ? "yes" : "",
          u.permissions.join(" "),
          u.user_id,
        ]),
      });
    }
    case "user.lock":
    case "user.unlock": {
      const user = await requireUser(db, args[0]);
      const locked = action === "user.lock";
      await setLocked(db, user.user_id, locked);
      note(`${locked ? "Locked" : "Unlocked"} user "${user.name}"`);
      return printJson({ user_id: user.user_id, name: user.name, locked });
    }
    case "user.set-password": {
      const user = await requireUser(db, args[0]);
      await setPassword(db, user.user_id, password!);
      note(`Set the password of user "${user.name}"`);
      return printJson({ user_id: user.user_id, name: user.name });
    }
    case "user.grant":
    case "user.revoke": {
      const user = await requireUser(db, args[0]);
      await db.transaction(async (tx) => {
        for (const permission of args.slice(1)) {
          if (action === "user.grant") await grant(tx, user.user_id, permission);
          else await revoke(tx, user.user_id, permission);
        }
      });
      return printJson({
        user_id: user.user_id,
        name: user.name,
        permissions: await permissionsOf(db, user.user_id),
      });
    }
    case "supervisor.register": {
      const tags = String(options.tags ?? "").split(",").map((tag) => tag.trim())
        .filter((tag) => tag !== "");
      const { supervisor_id, token } = await registerSupervisor(db, { name: args[0], tags });
      note(`Registered supervisor "${args[0]}"`);
      return await printWithToken({ supervisor_id, name: args[0], tags }, token, options);
    }
    case "supervisor.rotate-token": {
      const supervisor = await requireSupervisor(db, args[0]);
      const token = await rotateSupervisorToken(db, supervisor.supervisor_id);
      note(`Rotated the token of supervisor "${supervisor.name}"; the old one no longer works`);
      return await printWithToken(
        { supervisor_id: supervisor.supervisor_id, name: supervisor.name },
        token,
        options,
      );
    }
    case "supervisor.remove": {
      const supervisor = await requireSupervisor(db, args[0]);
      await removeSupervisor(db, supervisor.supervisor_id);
      note(`Removed supervisor "${supervisor.name}"`);
      return printJson({ supervisor_id: supervisor.supervisor_id, removed: true });
    }
    case "supervisor.list": {
      const supervisors = (await listSupervisorRecords(db)).map((record) => ({
        ...record,
        created_at: record.created_at.toISOString(),
        last_seen_at: record.last_seen_at?.toISOString() ?? null,
      }));
      return printResult(options, { supervisors }, {
        head: ["name", "tags", "last seen", "supervisor id"],
        rows: supervisors.map((s) => [s.name, s.tags.join(","), s.last_seen_at, s.supervisor_id]),
      });
    }
  }
}

/**
 * Prints a result that carries a new token: into `--token-file` (created mode 0600 before the
 * token is written, so it is never readable by others) or, without one, on stdout.
 */
async function printWithToken(fields: Options, token: string, options: Options): Promise<void> {
  const path = options.tokenFile;
  if (typeof path !== "string") {
    note("The token is shown only now: store it");
    return printJson({ ...fields, token });
  }
  const file = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    await Deno.chmod(path, 0o600); // an existing file keeps its mode on open
    await file.write(new TextEncoder().encode(`${token}\n`));
  } finally {
    file.close();
  }
  note(`Wrote the token to "${path}" (mode 0600)`);
  printJson({ ...fields, token_file: path });
}

async function readPassword(options: Options): Promise<string> {
  if (typeof options.password === "string") return options.password;
  if (options.passwordStdin === true) {
    const text = await new Response(Deno.stdin.readable).text();
    return text.replace(/\r?\n$/, "");
  }
  throw new TmlError(
    "missing_password",
    "Missing password: give --password-stdin (or --password)",
    { status: 400, field: "password" },
  );
}
