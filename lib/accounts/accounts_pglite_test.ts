import { openPglite } from "../db/pglite.ts";
import { runAccountsSuite } from "./accounts_suite.ts";

runAccountsSuite("PGlite", async () => {
  const db = await openPglite(undefined);
  return { db, cleanup: () => db.close() };
});
