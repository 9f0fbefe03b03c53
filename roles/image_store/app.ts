/** Composes the image store's HTTP server from its route families. */
import { Hono } from "hono";
import { apiRoutes } from "./api_routes.ts";
import type { StoreServerDeps } from "./context.ts";
import { fileRoutes } from "./file_routes.ts";
import { errorHandler, notFoundHandler } from "./http_errors.ts";
import { uploadRoutes } from "./upload_routes.ts";

export function buildApp(deps: StoreServerDeps): Hono {
  const app = new Hono();
  app.onError(errorHandler(deps.log));
  app.notFound(notFoundHandler);
  app.route("/api/v1", apiRoutes(deps));
  app.route("/", fileRoutes(deps));
  app.route("/", uploadRoutes(deps));
  return app;
}
