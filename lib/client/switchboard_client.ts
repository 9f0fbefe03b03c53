/**
 * The one typed client of the switchboard's REST API, used by the CLI and by every role that
 * talks to the switchboard over HTTP. Every response is parsed with the protocol's zod schemas;
 * an error answer becomes a `ClientError` with the server's code, status and message. The token
 * is sent as a bearer header and never logged.
 */
import type { z } from "zod";
import {
  ApiErrorBody,
  type CreateTokenRequest,
  type EnqueueJobRequest,
  JobHistory,
  JobList,
  JobView,
  SupervisorList,
  SupervisorView,
  TokenCreated,
  TokenInfo,
  TokenList,
  WhoAmI,
} from "../protocol/api.ts";
import { ClientError } from "./errors.ts";

/** What enqueue accepts: the request body with durations as strings or seconds. */
export type EnqueueInput = z.input<typeof import("../protocol/api.ts").EnqueueJobRequest>;

export class SwitchboardClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly token?: string,
    private readonly options: { timeoutMs?: number; fetch?: typeof fetch } = {},
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

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

  enqueueJob(request: EnqueueInput | EnqueueJobRequest): Promise<JobView> {
    return this.#call("POST", "/jobs", JobView, request);
  }

  getJob(jobId: string): Promise<JobView> {
    return this.#call("GET", `/jobs/${encodeURIComponent(jobId)}`, JobView);
  }

  listJobs(query: { state?: string; limit?: number; cursor?: string } = {}): Promise<JobList> {
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

  /** Long-polls until the job is terminated or `timeoutMs` passes; returns the view either way. */
  waitForJob(jobId: string, timeoutMs: number): Promise<JobView> {
    const seconds = Math.max(1, Math.round(timeoutMs / 1000));
    return this.#call(
      "GET",
      `/jobs/${encodeURIComponent(jobId)}/wait?timeout=${seconds}`,
      JobView,
      undefined,
      timeoutMs + 30_000,
    );
  }

  /**
   * Opens a job's console from byte `offset`; with `follow` the body streams until the job has
   * terminated. The caller reads the body and counts bytes to resume after a dropped connection.
   */
  async openJobLogs(jobId: string, offset: number, follow: boolean): Promise<Response> {
    const url = `${this.baseUrl}/api/v1/jobs/${
      encodeURIComponent(jobId)
    }/logs?offset=${offset}&follow=${follow}`;
    const response = await this.#fetch(url, {
      headers: this.token === undefined ? {} : { authorization: `Bearer ${this.token}` },
    });
    if (!response.ok) await this.#throwError("GET", url, response);
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

  /** fetch, with a network failure turned into a ClientError naming the switchboard. */
  async #fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await (this.options.fetch ?? fetch)(url, init);
    } catch (error) {
      throw new ClientError(
        "network_error",
        `Cannot reach the switchboard at "${this.baseUrl}": ${(error as Error).message}`,
        0,
        undefined,
        error,
      );
    }
  }

  async #throwError(method: string, url: string, response: Response): Promise<never> {
    let json: unknown;
    try {
      json = await response.json();
    } catch {
      json = undefined;
    }
    this.#raise(method, url, response.status, json);
  }

  /** Turns an error answer into a ClientError with the server's code and message. */
  #raise(method: string, url: string, status: number, json: unknown): never {
    const error = ApiErrorBody.safeParse(json);
    if (error.success) {
      throw new ClientError(
        error.data.error.code,
        error.data.error.message,
        status,
        error.data.error.field,
      );
    }
    throw new ClientError("http_error", `${method} ${url} failed: HTTP ${status}`, status);
  }

  async #call<T extends z.ZodType>(
    method: string,
    path: string,
    schema: T,
    body?: unknown,
    timeoutMs = this.options.timeoutMs ?? 60_000,
  ): Promise<z.infer<T>> {
    const url = `${this.baseUrl}/api/v1${path}`;
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await this.#fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      throw new ClientError(
        "invalid_response",
        `Invalid answer from ${method} ${url}: not JSON (HTTP ${response.status})`,
        response.status,
      );
    }
    if (!response.ok) this.#raise(method, url, response.status, json);
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new ClientError(
        "invalid_response",
        `Invalid answer from ${method} ${url}: ${parsed.error.issues[0]?.message}`,
        response.status,
      );
    }
    return parsed.data;
  }
}
