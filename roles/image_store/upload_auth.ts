/**
 * Decides whether a request may upload. Two kinds of bearer token are accepted: the configured
 * upload token of a standalone store (compared in constant time), and a switchboard API token,
 * which the switchboard itself vouches for through `GET /api/v1/whoami`. A positive switchboard
 * answer is cached briefly (keyed by the token's hash, never the token), so pushing an image's
 * many blobs costs one round trip; refusals are not cached, so a fresh grant works at once.
 * Tokens never reach a log or a response.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { describeError } from "../../lib/errors.ts";
import { PUSH_IMAGE_PERMISSION, UploaderIdentity } from "../../lib/protocol/image_store.ts";
import { StoreHttpError } from "./http_errors.ts";

/** Who is uploading, for logs. */
export interface Uploader {
  name: string;
  via: "upload_token" | "switchboard";
}

export interface UploadAuthOptions {
  uploadToken?: string;
  switchboardUrl?: string;
  /** How long a switchboard's positive answer is trusted. */
  cacheMs: number;
  fetch?: typeof fetch;
  now?: () => number;
}

const MAX_CACHED = 1024;

export class UploadAuth {
  readonly #uploadTokenHash?: Buffer;
  readonly #switchboardUrl?: string;
  readonly #cacheMs: number;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #cache = new Map<string, { until: number; uploader: Uploader }>();

  constructor(options: UploadAuthOptions) {
    if (options.uploadToken !== undefined) this.#uploadTokenHash = sha256(options.uploadToken);
    this.#switchboardUrl = options.switchboardUrl?.replace(/\/+$/, "");
    this.#cacheMs = options.cacheMs;
    this.#fetch = options.fetch ?? fetch;
    this.#now = options.now ?? Date.now;
  }

  /** Whether any way to upload is configured. */
  get enabled(): boolean {
    return this.#uploadTokenHash !== undefined || this.#switchboardUrl !== undefined;
  }

  /** The uploader behind an `Authorization` header; throws 401/403/503 otherwise. */
  async authorize(authorization: string | null): Promise<Uploader> {
    if (!this.enabled) {
      throw new StoreHttpError(
        403,
        "uploads_disabled",
        "Cannot upload: this image store accepts no uploads (configure upload_token_file or switchboard)",
      );
    }
    const match = /^Bearer[ ]+(\S+)$/i.exec(authorization?.trim() ?? "");
    if (match === null) {
      throw new StoreHttpError(
        401,
        "unauthorized",
        "Cannot upload: missing bearer token (Authorization: Bearer <token>)",
      );
    }
    const token = match[1];
    const hash = sha256(token);
    if (this.#uploadTokenHash !== undefined && timingSafeEqual(hash, this.#uploadTokenHash)) {
      return { name: "upload-token", via: "upload_token" };
    }
    if (this.#switchboardUrl === undefined) {
      throw new StoreHttpError(401, "unauthorized", "Cannot upload: invalid upload token");
    }
    const key = hash.toString("hex");
    const cached = this.#cache.get(key);
    if (cached !== undefined && cached.until > this.#now()) return cached.uploader;
    const uploader = await this.#askSwitchboard(token);
    if (this.#cache.size >= MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(key, { until: this.#now() + this.#cacheMs, uploader });
    return uploader;
  }

  async #askSwitchboard(token: string): Promise<Uploader> {
    const url = `${this.#switchboardUrl}/api/v1/whoami`;
    let response: Response;
    try {
      response = await this.#fetch(url, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      throw new StoreHttpError(
        503,
        "switchboard_unreachable",
        `Cannot check upload token: the switchboard at "${this.#switchboardUrl}" is unreachable`,
        { cause: describeError(error) },
      );
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new StoreHttpError(401, "unauthorized", "Cannot upload: invalid or expired API token");
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new StoreHttpError(
        503,
        "switchboard_error",
        `Cannot check upload token: the switchboard answered ${response.status}`,
      );
    }
    const parsed = UploaderIdentity.safeParse(await response.json().catch(() => undefined));
    if (!parsed.success) {
      throw new StoreHttpError(
        503,
        "switchboard_error",
        "Cannot check upload token: the switchboard's whoami answer is malformed",
      );
    }
    const { name, permissions } = parsed.data;
    if (!permissions.includes("admin") && !permissions.includes(PUSH_IMAGE_PERMISSION)) {
      throw new StoreHttpError(
        403,
        "forbidden",
        `Cannot upload: user "${name}" lacks the "${PUSH_IMAGE_PERMISSION}" permission`,
      );
    }
    return { name, via: "switchboard" };
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}
