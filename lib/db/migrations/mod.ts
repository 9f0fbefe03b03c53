/**
 * The switchboard's migrations in order. To change the schema, add a module
 * `NNNN_<what>.ts` exporting a `Migration` with the next version and list it here; never edit
 * a migration that has shipped.
 */
import type { Migration } from "../migrations.ts";
import { migration0001Users } from "./0001_users.ts";
import { migration0002Accounts } from "./0002_accounts.ts";
import { migration0003Jobs } from "./0003_jobs.ts";
import { migration0004Console } from "./0004_console.ts";

export const SWITCHBOARD_MIGRATIONS: readonly Migration[] = [
  migration0001Users,
  migration0002Accounts,
  migration0003Jobs,
  migration0004Console,
];
