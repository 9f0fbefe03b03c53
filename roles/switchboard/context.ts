/** What every switchboard route and service is built from, and the Hono environment type. */
import type { Database } from "../../lib/db/database.ts";
import type { Logger } from "../../lib/log.ts";
import type { Principal } from "../../lib/accounts/permissions.ts";
import type { SwitchboardConfig } from "./config.ts";
import type { PrincipalCache } from "./principal_cache.ts";

export interface SwitchboardDeps {
  db: Database;
  config: SwitchboardConfig;
  log: Logger;
  principals: PrincipalCache;
}

/** Hono environment: authenticated routes find the caller under `principal`. */
export type AppEnv = { Variables: { principal: Principal } };
