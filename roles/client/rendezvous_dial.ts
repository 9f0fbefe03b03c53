/**
 * Reaching a port of a job's host through its rendezvous server, as a client: a user token from
 * the switchboard (`POST /jobs/{id}/rendezvous-token`), then the websocket
 * `/v1/jobs/<id>/connect?port=N` carrying the bytes. A refusal becomes a `ClientError` with the
 * server's reason: `Cannot connect to port 22 of job "…": the token expired at …`.
 */
import { ClientError } from "../../lib/client/errors.ts";
import type { SwitchboardClient } from "../../lib/client/switchboard_client.ts";
import { WebSocketBytes, WebSocketClosedError } from "../../lib/net/ws_bytes.ts";
import type { ServiceEndpoint } from "../../lib/protocol/api.ts";

/** A token for one job and the rendezvous server it is good for. */
export interface RendezvousPass {
  jobId: string;
  token: string;
  rendezvousUrl: string;
  /** When the token expires, in ms since the epoch; unknown for a token given from outside. */
  expiresAt?: number;
  /** The job's services as the supervisor exposes them (by name and host port). */
  endpoints?: ServiceEndpoint[];
}

/** Mints a user token for the job (the caller must be its owner or an admin). */
export async function mintPass(client: SwitchboardClient, jobId: string): Promise<RendezvousPass> {
  const created = await client.createRendezvousToken(jobId);
  return {
    jobId,
    token: created.token,
    rendezvousUrl: created.rendezvous_url,
    expiresAt: Date.parse(created.expires_at),
    endpoints: created.endpoints,
  };
}

/** Opens a byte stream to `port` on the job's host. */
export async function dialJob(pass: RendezvousPass, port: number): Promise<WebSocketBytes> {
  const base = pass.rendezvousUrl.replace(/^http/, "ws").replace(/\/+$/, "");
  const url = `${base}/v1/jobs/${encodeURIComponent(pass.jobId)}/connect?port=${port}`;
  try {
    return await WebSocketBytes.connect(url, {
      headers: { authorization: `Bearer ${pass.token}` },
    });
  } catch (error) {
    if (!(error instanceof WebSocketClosedError)) throw error;
    const { code, reason } = error.close;
    const detail = reason.replace(/^Cannot connect: /, "") ||
      `the rendezvous server at "${base}" closed the connection (code ${code})`;
    throw new ClientError(
      code >= 4000 ? `rendezvous_${code}` : "network_error",
      `Cannot connect to port ${port} of job "${pass.jobId}": ${detail}`,
      code >= 4000 && code < 5000 ? code - 4000 : 0,
    );
  }
}
