import { startPostgresServer } from "../../tests/support/postgres_server.ts";
import { openPostgres } from "../db/postgres.ts";
import { runAccountsSuite } from "./accounts_suite.ts";

runAccountsSuite("PostgreSQL", async () => {
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
