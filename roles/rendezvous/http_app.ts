/**
 * The rendezvous server's HTTP side: the supervisors' control websocket, the users' websocket
 * to a job's port, `/metrics` and a health check. A user websocket is upgraded before it is
 * checked, so that a refusal (bad token, another job's token, no such service, limit reached)
 * reaches the client as a close code and a reason it can print.
 */
import { Hono } from "hono";
import type { Logger } from "../../lib/log.ts";
import { UserConnectQuery } from "../../lib/protocol/rendezvous.ts";
import { Uuid } from "../../lib/protocol/common.ts";
import { TokenError } from "../../lib/protocol/rendezvous_token.ts";
import { WebSocketBytes } from "../../lib/net/ws_bytes.ts";
import { formatZodError } from "../../lib/zod_issues.ts";
import { ControlSession, type ControlSessionDeps } from "./control_session.ts";
import { RendezvousError } from "./errors.ts";
import type { KeyRing } from "./key_ring.ts";
import type { ServiceTable, UserSide } from "./service_table.ts";

export interface HttpDeps {
  keys: KeyRing;
  table: ServiceTable;
  log: Logger;
  control: ControlSessionDeps;
}

export function buildApp(deps: HttpDeps): Hono {
  const app = new Hono();
  app.onError((error, c) => {
    if (error instanceof RendezvousError) {
      return c.json({ error: error.toJSON() }, error.status as 400);
    }
    deps.log.error("request failed unexpectedly", { path: c.req.path, error: String(error) });
    return c.json({ error: { code: "internal_error", message: "Internal error" } }, 500);
  });
  app.notFound((c) =>
    c.json({
      error: { code: "not_found", message: `No such route: ${c.req.method} ${c.req.path}` },
    }, 404)
  );
  app.get("/v1/health", (c) => c.json({ ok: true }));
  app.get("/metrics", (c) => c.json(deps.table.metrics()));

  app.get("/v1/supervisors/connect", (c) => {
    const { socket, response } = Deno.upgradeWebSocket(requireUpgrade(c.req.raw));
    new ControlSession(socket, deps.control);
    return response;
  });

  app.get("/v1/jobs/:id/connect", (c) => {
    const request = requireUpgrade(c.req.raw);
    // What the check needs is read now: the request is closed once the upgrade is answered.
    const asked = {
      jobId: c.req.param("id"),
      query: Object.fromEntries(new URL(request.url).searchParams),
      authorization: request.headers.get("authorization") ?? "",
    };
    const { socket, response } = Deno.upgradeWebSocket(request);
    const stream = new WebSocketBytes(socket);
    const user: UserSide = {
      stream,
      accepted: () => stream.accept(),
      refuse: (error) => stream.close(error.closeCode, error.message),
      cut: (error) => stream.close(error.closeCode, error.message),
    };
    void (async () => {
      await stream.opened;
      let target: { jobId: string; port: number };
      try {
        target = await authorize(asked, deps.keys);
      } catch (error) {
        if (!(error instanceof RendezvousError)) throw error;
        return user.refuse(error);
      }
      await deps.table.carry(target.jobId, target.port, user);
    })().catch((error) => {
      deps.log.error("user connection failed", { error: String(error) });
      stream.close(1011, "Internal error");
    });
    return response;
  });
  return app;
}

function requireUpgrade(request: Request): Request {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new RendezvousError("bad_request", "Cannot connect: expected a websocket upgrade");
  }
  return request;
}

/** The job and port a user websocket may reach, from its path, query and token. */
async function authorize(
  asked: { jobId: string; query: Record<string, string>; authorization: string },
  keys: KeyRing,
): Promise<{ jobId: string; port: number }> {
  const jobId = Uuid.safeParse(asked.jobId);
  if (!jobId.success) {
    throw new RendezvousError("bad_request", "Cannot connect: the path names no job id");
  }
  const query = UserConnectQuery.safeParse(asked.query);
  if (!query.success) {
    throw new RendezvousError(
      "bad_request",
      `Cannot connect: ${formatZodError(query.error, "query").split("\n")[0]}`,
    );
  }
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(asked.authorization)?.[1];
  const token = bearer ?? query.data.token;
  if (token === undefined) {
    throw new RendezvousError("unauthorized", "Cannot connect: no token");
  }
  let claims;
  try {
    claims = await keys.verify(token);
  } catch (error) {
    if (!(error instanceof TokenError)) throw error;
    throw new RendezvousError(
      "unauthorized",
      `Cannot connect: ${error.message.replace(/^Cannot verify token: it/, "the token")}`,
    );
  }
  if (claims.typ !== "rendezvous_user") {
    throw new RendezvousError("unauthorized", "Cannot connect: not a user token");
  }
  if (claims.job_id !== jobId.data) {
    throw new RendezvousError("forbidden", "Cannot connect: the token is for another job");
  }
  return { jobId: jobId.data, port: query.data.port };
}
