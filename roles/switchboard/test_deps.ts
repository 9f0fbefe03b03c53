/**
 * Real switchboard dependencies for in-process route tests: an in-memory PGlite database with
 * every migration applied, the default config, a logger that keeps its lines so a test can
 * check that no secret was logged, and a principal cache with an injectable clock.
 */
import type { LogFields, Logger } from "../../lib/log.ts";
import { migrate } from "../../lib/db/migrations.ts";
import { SWITCHBOARD_MIGRATIONS } from "../../lib/db/migrations/mod.ts";
import { openPglite } from "../../lib/db/pglite.ts";
import { SwitchboardConfig } from "./config.ts";
import type { SwitchboardDeps } from "./context.ts";
import { PrincipalCache } from "./principal_cache.ts";

export interface TestDeps extends SwitchboardDeps {
  /** Every line logged so far, with its fields. */
  logLines: string[];
  /** Moves the principal cache's clock forward. */
  advanceClock(ms: number): void;
  close(): Promise<void>;
}

export async function openTestDeps(): Promise<TestDeps> {
  const db = await openPglite(undefined);
  await migrate(db, SWITCHBOARD_MIGRATIONS);
  const logLines: string[] = [];
  let now = Date.now();
  return {
    db,
    config: SwitchboardConfig.parse({}),
    log: keepingLogger("switchboard", logLines),
    principals: new PrincipalCache(undefined, () => now),
    logLines,
    advanceClock: (ms) => (now += ms),
    close: () => db.close(),
  };
}

function keepingLogger(component: string, lines: string[]): Logger {
  const write = (level: string) => (message: string, fields?: LogFields) => {
    lines.push(`${level} ${component}: ${message} ${JSON.stringify(fields ?? {})}`);
  };
  return {
    debug: write("debug"),
    info: write("info"),
    warn: write("warn"),
    error: write("error"),
    child: (sub) => keepingLogger(`${component}:${sub}`, lines),
  };
}
