import { runDatabaseConformance } from "./conformance.ts";
import { openPglite } from "./pglite.ts";

runDatabaseConformance("PGlite", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tml-pglite-" });
  const db = await openPglite(dir);
  return {
    db,
    async cleanup() {
      await db.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
});
