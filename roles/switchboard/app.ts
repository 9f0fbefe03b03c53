/** Composes the switchboard's REST API (`/api/v1`) from its route families. */
import { Hono } from "hono";
import type { AppEnv, SwitchboardDeps } from "./context.ts";
import type { Coordinator } from "./coordinator.ts";
import { errorHandler, notFoundHandler } from "./http_errors.ts";
import { imageChecker } from "./image_check.ts";
import { jobRoutes } from "./job_routes.ts";
import { openApiRoutes } from "./openapi.ts";
import { RendezvousDirectory, rendezvousRoutes } from "./rendezvous_routes.ts";
import { supervisorRoutes } from "./supervisor_routes.ts";
import { tokenRoutes, whoamiRoutes } from "./token_routes.ts";

export function buildApp(deps: SwitchboardDeps, coordinator: Coordinator): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(errorHandler(deps.log));
  app.notFound(notFoundHandler);
  app.get("/api/v1/health", (c) => c.json({ ok: true }));
  app.route("/api/v1", openApiRoutes());
  app.route("/api/v1/tokens", tokenRoutes(deps));
  app.route("/api/v1/whoami", whoamiRoutes(deps));
  // Before the job routes: it serves /jobs/{id}/rendezvous-token, with its own authentication.
  const rendezvous = new RendezvousDirectory();
  app.route("/api/v1", rendezvousRoutes(deps, coordinator, rendezvous));
  app.route(
    "/api/v1/jobs",
    jobRoutes(
      deps,
      coordinator,
      imageChecker(deps.config.image_store_url),
      (job) => rendezvous.sshEndpoints(job),
    ),
  );
  app.route("/api/v1/supervisors", supervisorRoutes(deps, coordinator));
  return app;
}
