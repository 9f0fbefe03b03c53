/**
 * The one typed client of the switchboard's REST API, used by the CLI and by every role that
 * talks to the switchboard over HTTP. Every response is parsed with the protocol's zod schemas;
 * an error answer becomes a `ClientError` with the server's code, status, field and message, and
 * a network failure a `ClientError` with status 0 naming the URL. The token is sent as a bearer
 * header and appears in no message.
 */
import type { z } from "zod";
import {
  ApiErrorBody,
  type CreateTokenRequest,
  type EnqueueJobRequest,
  JobHistory,
  JobList,
  JobView,
  type ListJobsQuery,
  RendezvousGrant,
  type RendezvousGrantRequest,
  RendezvousKeys,
  RendezvousTokenCreated,
  type RendezvousTokenRequest,
  SupervisorList,
  SupervisorView,
  TokenCreated,
  TokenInfo,
  TokenList,
  WhoAmI,
} from "../protocol/api.ts";
import { TML_VERSION } from "../version.ts";
import { issuePath } from "../zod_issues.ts";
import { ClientError } from "./errors.ts";

/** What enqueue accepts: the request body before defaults, durations as strings or seconds. */
export type EnqueueInput = z.input<typeof EnqueueJobRequest>;

export interface SwitchboardClientOptions {
  /** Time allowed for one request, answer included; default 60 s. */
  timeoutMs?: number;
  /** The fetch to use; default the global one. */
  fetch?: typeof fetch;
}

const DEFAULT_TIMEOUT_MS = 60_000;
/** Extra time a long poll is given beyond the wait it asks the switchboard for. */
const LONG_POLL_GRACE_MS = 30_000;

export class SwitchboardClient {
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #options: SwitchboardClientOptions;

  constructor(baseUrl: string, token?: string, options: SwitchboardClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#token = token;
    this.#options = options;
  }

  /** `POST /tokens/login`: a new token for a user name or email and password. */
  login(user: string, password: string, expiresIn?: string): Promise<TokenCreated> {
    return this.#call("POST", "/tokens/login", TokenCreated, {
      user,
      password,
      expires_in: expiresIn,
    });
  }

  whoami(): Promise<WhoAmI> {
    return this.#call("GET", "/whoami", WhoAmI);
  }

  createToken(request: z.input<typeof CreateTokenRequest>): Promise<TokenCreated> {
    return this.#call("POST", "/tokens", TokenCreated, request);
  }

  listTokens(): Promise<TokenList> {
    return this.#call("GET", "/tokens", TokenList);
  }

  revokeToken(tokenId: string): Promise<TokenInfo> {
    return this.#call("DELETE", `/tokens/${encodeURIComponent(tokenId)}`, TokenInfo);
  }

  enqueueJob(request: EnqueueInput): Promise<JobView> {
    return this.#call("POST", "/jobs", JobView, request);
  }

  getJob(jobId: string): Promise<JobView> {
    return this.#call("GET", `/jobs/${encodeURIComponent(jobId)}`, JobView);
  }

  /** One page of jobs, newest first; pass the page's `next_cursor` for the next one. */
  listJobs(query: Partial<z.input<typeof ListJobsQuery>> = {}): Promise<JobList> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) params.set(key, String(value));
    }
    const suffix = params.size > 0 ? `?${params}` : "";
    return this.#call("GET", `/jobs${suffix}`, JobList);
  }

  jobHistory(jobId: string): Promise<JobHistory> {
    return this.#call("GET", `/jobs/${encodeURIComponent(jobId)}/history`, JobHistory);
  }

  /**
   * Long-polls until the job is terminated or `timeoutMs` passes (the switchboard caps it at
   * two minutes); returns the job's view either way.
   */
  waitForJob(jobId: string, timeoutMs: number): Promise<JobView> {
    const ms = Math.max(1, Math.round(timeoutMs));
    return this.#call(
      "GET",
      `/jobs/${encodeURIComponent(jobId)}/wait?timeout=${ms}ms`,
      JobView,
      undefined,
      ms + LONG_POLL_GRACE_MS,
    );
  }

  /**
   * Opens a job's console from byte `offset`; with `follow` the body streams until the job has
   * terminated. The caller reads the body and counts bytes to resume after a dropped connection.
   */
  async openJobLogs(jobId: string, offset: number, follow: boolean): Promise<Response> {
    const path = `/jobs/${encodeURIComponent(jobId)}/logs?offset=${offset}&follow=${follow}`;
    const url = `${this.baseUrl}/api/v1${path}`;
    // No overall timeout: a followed console stays open as long as the job runs.
    const response = await this.#fetch("GET", url, { headers: this.#headers(false) });
    if (!response.ok) this.#raise("GET", url, response, await this.#readJson(url, response));
    return response;
  }

  cancelJob(jobId: string): Promise<JobView> {
    return this.#call("POST", `/jobs/${encodeURIComponent(jobId)}/cancel`, JobView);
  }

  listSupervisors(): Promise<SupervisorList> {
    return this.#call("GET", "/supervisors", SupervisorList);
  }

  getSupervisor(supervisorId: string): Promise<SupervisorView> {
    return this.#call("GET", `/supervisors/${encodeURIComponent(supervisorId)}`, SupervisorView);
  }

  /** `POST /jobs/{id}/rendezvous-token`: a short-lived token that reaches the job's host. */
  createRendezvousToken(
    jobId: string,
    request: z.input<typeof RendezvousTokenRequest> = {},
  ): Promise<RendezvousTokenCreated> {
    return this.#call(
      "POST",
      `/jobs/${encodeURIComponent(jobId)}/rendezvous-token`,
      RendezvousTokenCreated,
      request,
    );
  }

  /** `POST /rendezvous/grant`, as a supervisor: a grant for the job it runs. */
  rendezvousGrant(request: z.input<typeof RendezvousGrantRequest>): Promise<RendezvousGrant> {
    return this.#call("POST", "/rendezvous/grant", RendezvousGrant, request);
  }

  /** `GET /rendezvous/keys` (no token needed): the keys grants and user tokens are signed with. */
  rendezvousKeys(): Promise<RendezvousKeys> {
    return this.#call("GET", "/rendezvous/keys", RendezvousKeys);
  }

  #headers(withBody: boolean): Record<string, string> {
    const headers: Record<string, string> = {
      accept: "application/json",
      "user-agent": `tml/${TML_VERSION}`,
    };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    if (withBody) headers["content-type"] = "application/json";
    return headers;
  }

  /** fetch, with a network failure or timeout turned into a ClientError naming the URL. */
  async #fetch(method: string, url: string, init: RequestInit): Promise<Response> {
    try {
      return await (this.#options.fetch ?? fetch)(url, { ...init, method });
    } catch (error) {
      throw networkError(url, error);
    }
  }

  /** The answer's body as JSON; undefined when empty; a ClientError when it is not JSON. */
  async #readJson(url: string, response: Response): Promise<unknown> {
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw networkError(url, error);
    }
    if (text === "") return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new ClientError(
        "invalid_response",
        `Cannot read the answer from "${url}": not JSON (HTTP ${response.status})`,
        response.status,
      );
    }
  }

  /** Turns an error answer into a ClientError with the server's code, field and message. */
  #raise(method: string, url: string, response: Response, json: unknown): never {
    const body = ApiErrorBody.safeParse(json);
    if (body.success) {
      const { code, message, field } = body.data.error;
      throw new ClientError(code, message, response.status, field);
    }
    const reason = `${response.status} ${response.statusText}`.trim();
    throw new ClientError(
      "http_error",
      `Cannot ${method} "${url}": HTTP ${reason}`,
      response.status,
    );
  }

  async #call<T extends z.ZodType>(
    method: string,
    path: string,
    schema: T,
    body?: unknown,
    timeoutMs = this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  ): Promise<z.infer<T>> {
    const url = `${this.baseUrl}/api/v1${path}`;
    const response = await this.#fetch(method, url, {
      headers: this.#headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const json = await this.#readJson(url, response);
    if (!response.ok) this.#raise(method, url, response, json);
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ClientError(
        "invalid_response",
        `Cannot read the answer from "${url}": ${issuePath(issue)}: ${issue.message}`,
        response.status,
      );
    }
    return parsed.data;
  }
}

/** A ClientError with status 0 for a request that got no (complete) answer. */
function networkError(url: string, error: unknown): ClientError {
  const timedOut = error instanceof DOMException && error.name === "TimeoutError";
  return new ClientError(
    timedOut ? "timeout" : "network_error",
    `Cannot reach the switchboard at "${url}": ${
      timedOut ? "no answer in time" : (error as Error).message
    }`,
    0,
    undefined,
    error,
  );
}
