/**
 * The JSON API under `/api/v1`: the image listing the CLI shows (`tml image list|show`), and
 * the server's counters. Read-only and public, like the files themselves.
 */
import { Hono } from "hono";
import { StoreError } from "../../lib/store/errors.ts";
import { assertDigest } from "../../lib/store/layout.ts";
import type { StoreServerDeps } from "./context.ts";
import { imageDetail } from "./catalog.ts";

export function apiRoutes(deps: StoreServerDeps): Hono {
  const app = new Hono();
  app.get("/health", (c) => c.json({ ok: true }));
  app.get("/stats", (c) => c.json(deps.stats.snapshot(deps.catalog.size)));
  app.get("/images", (c) => c.json({ images: deps.catalog.list(c.req.query("label")) }));
  app.get("/images/:id", async (c) => {
    const imageId = assertDigest(c.req.param("id"), "image_id");
    const summary = deps.catalog.get(imageId);
    const manifest = summary === undefined ? undefined : await deps.store.readManifest(imageId);
    if (summary === undefined || manifest === undefined) {
      throw new StoreError("not_found", `Cannot find image "${imageId}" in this store`);
    }
    return c.json(imageDetail(summary, manifest));
  });
  return app;
}
