/**
 * For the client's unit tests: a scripted HTTP server on a real local socket (to produce the
 * answers and failures a real switchboard rarely gives on cue: 503s, dropped connections, non-JSON
 * bodies), and a valid JobView to answer with.
 */
import type { JobView } from "../protocol/api.ts";

/** What the server received (a Request cannot be read once it has been answered). */
export interface ReceivedRequest {
  method: string;
  url: URL;
  headers: Headers;
  body: string;
}

export interface TestServer {
  url: string;
  /** Every request received, in order. */
  requests: ReceivedRequest[];
  close(): Promise<void>;
}

/** Serves `handler` on 127.0.0.1, on `port` or else a free one. */
export function startTestServer(
  handler: (request: ReceivedRequest, index: number) => Response | Promise<Response>,
  port = 0,
): TestServer {
  const requests: ReceivedRequest[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen: () => {} },
    async (request) => {
      const received = {
        method: request.method,
        url: new URL(request.url),
        headers: request.headers,
        body: await request.text(),
      };
      requests.push(received);
      return await handler(received, requests.length - 1);
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}

/** A free local port with nothing listening on it. */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export function jobView(overrides: Partial<JobView> = {}): JobView {
  return {
    job_id: "6f1c2b3a-4d5e-4f60-8a71-92b3c4d5e6f7",
    owner_id: "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d",
    image_id: "a".repeat(64),
    tag_config: "board:x",
    parameters: { x: { value: null, secret: true } },
    ssh_keys: [],
    workload: null,
    restart_count: 0,
    restarted_from: null,
    restarted_as: null,
    timeout_ms: 3_600_000,
    queue_timeout_ms: 86_400_000,
    state: "queued",
    sub_state: null,
    exit_status: null,
    exit_message: null,
    supervisor_id: null,
    cancel_requested: false,
    enqueued_at: "2026-01-01T00:00:00.000Z",
    dispatched_at: null,
    terminated_at: null,
    ssh_endpoints: [],
    ...overrides,
  };
}

export function json(body: unknown, status = 200): Response {
  return Response.json(body, { status });
}
