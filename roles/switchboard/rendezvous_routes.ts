/**
 * The switchboard's side of the rendezvous proxy: it signs what a rendezvous server trusts and
 * remembers what each supervisor exposes there.
 *
 * - `GET /rendezvous/keys` (public): the Ed25519 public key grants and tokens are signed with.
 * - `POST /rendezvous/grant` (a supervisor's own token): a grant naming the supervisor and the
 *   job it runs; refused for a job it does not run, so a supervisor can only expose services of
 *   its own job. The request also reports the endpoints the rendezvous server gave it, which
 *   the job's view lists as `ssh_endpoints`.
 * - `POST /jobs/{id}/rendezvous-token` (the job's owner, or an admin): a short-lived token that
 *   reaches that one job's host through the websocket endpoint.
 *
 * The signing key is made at start and kept in memory only: after a restart old grants and
 * tokens stop verifying once they expire, and supervisors fetch new grants as they renew.
 */
import { Hono } from "hono";
import { grants } from "../../lib/accounts/permissions.ts";
import { authenticateSupervisor } from "../../lib/accounts/supervisors.ts";
import {
  RendezvousGrantRequest,
  RendezvousTokenRequest,
  type ServiceEndpoint,
  type SshEndpoint,
} from "../../lib/protocol/api.ts";
import { TokenSigner } from "../../lib/protocol/rendezvous_token.ts";
import { authenticate } from "./auth.ts";
import type { AppEnv, SwitchboardDeps } from "./context.ts";
import type { Coordinator } from "./coordinator.ts";
import { ApiError, notFound, unauthorized } from "./http_errors.ts";
import type { JobRow } from "./job_row.ts";
import { readJsonBody, readPathUuid } from "./request_input.ts";

/** How long a grant is valid; supervisors renew at half of it. */
export const GRANT_TTL_MS = 10 * 60_000;
const USER_TOKEN_TTL_MS = 10 * 60_000;
const MAX_USER_TOKEN_TTL_MS = 60 * 60_000;

interface Exposure {
  jobId: string;
  rendezvousUrl: string;
  endpoints: ServiceEndpoint[];
}

/** What each supervisor last reported exposing: one entry per supervisor, in memory. */
export class RendezvousDirectory {
  readonly #bySupervisor = new Map<string, Exposure>();

  record(supervisorId: string, exposure: Exposure | undefined): void {
    if (exposure === undefined) this.#bySupervisor.delete(supervisorId);
    else this.#bySupervisor.set(supervisorId, exposure);
  }

  /** Where a job's services are reached, while it runs on the supervisor that reported them. */
  exposureOf(job: JobRow): Exposure | undefined {
    if (job.supervisor_id === null || job.state === "terminated") return undefined;
    const exposure = this.#bySupervisor.get(job.supervisor_id);
    return exposure?.jobId === job.job_id ? exposure : undefined;
  }

  /** The job's `ssh` services as host:port on the rendezvous server, for its view. */
  sshEndpoints(job: JobRow): SshEndpoint[] {
    return (this.exposureOf(job)?.endpoints ?? [])
      .filter((endpoint) => endpoint.name === "ssh")
      .map((endpoint) => ({ host: endpoint.host, port: endpoint.public_port }));
  }
}

export function rendezvousRoutes(
  deps: SwitchboardDeps,
  coordinator: Coordinator,
  directory: RendezvousDirectory,
): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  let signer: Promise<TokenSigner> | undefined;
  const sign = () => (signer ??= TokenSigner.generate());

  app.get("/rendezvous/keys", async (c) => c.json({ keys: [(await sign()).publicKey] }));

  app.post("/rendezvous/grant", async (c) => {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "")?.[1];
    const supervisor = token === undefined
      ? undefined
      : await authenticateSupervisor(deps.db, token);
    if (supervisor === undefined) {
      throw unauthorized("Cannot grant rendezvous: missing or invalid supervisor token");
    }
    const request = await readJsonBody(c, RendezvousGrantRequest, deps.config.max_body_bytes);
    const supervisorId = supervisor.supervisor_id;
    if (request.job_id !== null) {
      const job = await coordinator.store.get(request.job_id);
      if (job?.supervisor_id !== supervisorId || job.state === "terminated") {
        throw new ApiError(
          409,
          "not_running_job",
          `Cannot grant rendezvous for job "${request.job_id}": supervisor "${supervisor.name}" is not running it`,
          { field: "job_id" },
        );
      }
    }
    directory.record(
      supervisorId,
      request.job_id === null || request.rendezvous_url === null ? undefined : {
        jobId: request.job_id,
        rendezvousUrl: request.rendezvous_url,
        endpoints: request.endpoints,
      },
    );
    const now = Date.now();
    const grant = await (await sign()).sign({
      typ: "rendezvous_grant",
      supervisor_id: supervisorId,
      job_id: request.job_id,
      iat: now,
      exp: now + GRANT_TTL_MS,
    });
    return c.json({
      grant,
      supervisor_id: supervisorId,
      job_id: request.job_id,
      expires_at: new Date(now + GRANT_TTL_MS).toISOString(),
    });
  });

  app.post("/jobs/:id/rendezvous-token", authenticate(deps), async (c) => {
    const principal = c.get("principal");
    const jobId = readPathUuid(c, "id");
    const request = c.req.header("content-length") === "0" || c.req.raw.body === null
      ? RendezvousTokenRequest.parse({})
      : await readJsonBody(c, RendezvousTokenRequest, deps.config.max_body_bytes);
    const action = `Cannot create a rendezvous token for job "${jobId}"`;
    const job = await coordinator.store.get(jobId);
    const owner = job?.owner_id === principal.userId;
    const admin = grants(principal.permissions, "admin");
    if (
      job === undefined ||
      (!owner && !admin && !grants(principal.permissions, `read_job_status:${jobId}`) &&
        !grants(principal.permissions, "list_jobs"))
    ) {
      throw notFound(`Cannot find job "${jobId}"`);
    }
    if (!owner && !admin) {
      throw new ApiError(
        403,
        "forbidden",
        `${action}: only its owner and admins may reach its host`,
      );
    }
    const ttl = request.expires_in ?? USER_TOKEN_TTL_MS;
    if (ttl <= 0 || ttl > MAX_USER_TOKEN_TTL_MS) {
      throw new ApiError(
        400,
        "invalid_request",
        `Invalid request body: expires_in: expected at most 1h (request body)`,
        { field: "expires_in" },
      );
    }
    if (job.state === "terminated") {
      throw new ApiError(409, "job_terminated", `${action}: it is terminated`);
    }
    const exposure = directory.exposureOf(job);
    if (exposure === undefined) {
      throw new ApiError(409, "not_exposed", `${action}: its supervisor exposes no services yet`);
    }
    const now = Date.now();
    const token = await (await sign()).sign({
      typ: "rendezvous_user",
      job_id: jobId,
      user_id: principal.userId,
      iat: now,
      exp: now + ttl,
    });
    deps.log.info("rendezvous token created", { job_id: jobId, user_id: principal.userId });
    return c.json({
      token,
      job_id: jobId,
      expires_at: new Date(now + ttl).toISOString(),
      rendezvous_url: exposure.rendezvousUrl,
      endpoints: exposure.endpoints,
    }, 201);
  });
  return app;
}
