/**
 * `/api/v1/supervisors`: the supervisor websocket endpoint (`/connect`, authenticated with the
 * supervisor's own token) and the read-only views users see (`list_supervisors`,
 * `read_supervisor_status:<id>`).
 */
import { Hono } from "hono";
import { hasPermission } from "../../lib/accounts/permissions.ts";
import { listSupervisorRecords } from "../../lib/accounts/supervisors.ts";
import type { SupervisorView } from "../../lib/protocol/api.ts";
import { authenticate, requirePermission } from "./auth.ts";
import type { AppEnv, SwitchboardDeps } from "./context.ts";
import type { Coordinator } from "./coordinator.ts";
import { forbidden, notFound } from "./http_errors.ts";
import { readPathUuid } from "./request_input.ts";

export function supervisorRoutes(deps: SwitchboardDeps, coordinator: Coordinator): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/connect", (c) => coordinator.acceptConnection(c.req.raw));

  const views = async (): Promise<SupervisorView[]> => {
    const records = await listSupervisorRecords(deps.db);
    return records.map((record) => {
      const status = coordinator.supervisorStatus(record.supervisor_id);
      return {
        supervisor_id: record.supervisor_id,
        name: record.name,
        tags: record.tags,
        connected: status.connected,
        current_job_id: status.currentJobId,
        last_seen_at: record.last_seen_at?.toISOString() ?? null,
      };
    });
  };

  app.get("/", authenticate(deps), async (c) => {
    requirePermission(c, "list_supervisors");
    return c.json({ supervisors: await views() });
  });

  app.get("/:id", authenticate(deps), async (c) => {
    const principal = c.get("principal");
    const id = readPathUuid(c, "id");
    if (
      !hasPermission(principal, `read_supervisor_status:${id}`) &&
      !hasPermission(principal, "list_supervisors")
    ) {
      throw forbidden(
        `Cannot read supervisor "${id}": missing permission "read_supervisor_status:${id}"`,
      );
    }
    const view = (await views()).find((supervisor) => supervisor.supervisor_id === id);
    if (view === undefined) throw notFound(`Cannot find supervisor "${id}"`);
    return c.json(view);
  });
  return app;
}
