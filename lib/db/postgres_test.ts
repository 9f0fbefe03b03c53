import { runDatabaseConformance } from "./conformance.ts";
import { openPostgres } from "./postgres.ts";
import { startPostgresServer } from "../../tests/support/postgres_server.ts";

runDatabaseConformance("PostgreSQL", async () => {
  const server = await startPostgresServer();
  const db = await openPostgres(server.url);
  return {
    db,
    async cleanup() {
      await db.close();
      await server.stop();
    },
  };
});
