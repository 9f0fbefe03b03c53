/**
 * The `tml image` commands' typed client of an image store's HTTP API (`lib/protocol/
 * image_store.ts`): existence checks, uploads, the listing API and the mirror index. Every answer
 * is parsed with its zod schema; every failure becomes an `ImageCommandError` carrying the
 * server's own message, so the CLI prints what the store said.
 */
import type { z } from "zod";
import { ApiErrorBody } from "../../../lib/protocol/api.ts";
import {
  BlobUploaded,
  ImageDetail,
  ImageList,
  type ImageSummary,
  ImageUploaded,
  INDEX_PATH,
  parseIndex,
} from "../../../lib/protocol/image_store.ts";
import { blobPath, imagePath } from "../../../lib/store/layout.ts";
import { formatZodError } from "../../../lib/zod_issues.ts";
import { type RawResponse, uploadFile } from "./blob_upload.ts";
import { ImageCommandError } from "./errors.ts";

export interface StoreClientOptions {
  url: string;
  token?: string;
  fetch?: typeof fetch;
}

export class ImageStoreClient {
  readonly url: string;
  readonly #token?: string;
  readonly #fetch: typeof fetch;

  constructor(options: StoreClientOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.#token = options.token;
    this.#fetch = options.fetch ?? fetch;
  }

  hasBlob(digest: string): Promise<boolean> {
    return this.#exists(blobPath(digest));
  }

  hasImage(imageId: string): Promise<boolean> {
    return this.#exists(imagePath(imageId));
  }

  /** Streams a local file as blob `digest`; the store verifies it. */
  async uploadBlob(
    digest: string,
    path: string,
    size: number,
    onBytes?: (bytes: number) => void,
  ): Promise<BlobUploaded> {
    const headers = this.#authHeaders("upload");
    let response: RawResponse;
    try {
      response = await uploadFile({
        url: new URL(`${this.url}/blobs/${digest}`),
        path,
        size,
        headers,
        onBytes,
      });
    } catch (error) {
      throw this.#unreachable(error);
    }
    return parseAnswer(response.status, response.body, BlobUploaded, `upload blob "${digest}"`);
  }

  /** Publishes a manifest; a 409 means blobs it names are missing from the store. */
  async uploadManifest(imageId: string, bytes: Uint8Array): Promise<ImageUploaded> {
    const response = await this.#request(`/images/${imageId}`, {
      method: "PUT",
      headers: { ...this.#authHeaders("publish"), "content-type": "application/toml" },
      body: new Uint8Array(bytes),
    });
    return parseAnswer(
      response.status,
      await response.text(),
      ImageUploaded,
      `publish image "${imageId}"`,
    );
  }

  async listImages(label?: string): Promise<ImageSummary[]> {
    const query = label === undefined ? "" : `?label=${encodeURIComponent(label)}`;
    const response = await this.#request(`/api/v1/images${query}`);
    const body = await response.text();
    return parseAnswer(response.status, body, ImageList, "list images").images;
  }

  async showImage(imageId: string): Promise<ImageDetail> {
    const response = await this.#request(`/api/v1/images/${imageId}`);
    return parseAnswer(
      response.status,
      await response.text(),
      ImageDetail,
      `show image "${imageId}"`,
    );
  }

  /** The store-relative paths `all.txt` lists. */
  async mirrorIndex(): Promise<string[]> {
    const response = await this.#request(`/${INDEX_PATH}`);
    const text = await response.text();
    if (!response.ok) throw answerError(response.status, text, `read ${INDEX_PATH}`);
    return parseIndex(text);
  }

  async #exists(path: string): Promise<boolean> {
    const response = await this.#request(`/${path}`, { method: "HEAD" });
    if (response.status === 404) return false;
    if (response.ok) return true;
    throw answerError(response.status, "", `check "${path}"`);
  }

  async #request(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await this.#fetch(`${this.url}${path}`, init);
    } catch (error) {
      throw this.#unreachable(error);
    }
  }

  /** Whether uploads will carry a token (without one the store refuses them). */
  get hasToken(): boolean {
    return this.#token !== undefined;
  }

  #authHeaders(action: string): Record<string, string> {
    if (this.#token === undefined) {
      throw new ImageCommandError(
        "missing_token",
        `Cannot ${action} to "${this.url}": no token (set TML_API_TOKEN or give --token-file)`,
        { field: "api_token" },
      );
    }
    return { authorization: `Bearer ${this.#token}` };
  }

  #unreachable(error: unknown): ImageCommandError {
    return new ImageCommandError(
      "store_unreachable",
      `Cannot reach the image store at "${this.url}": ${(error as Error).message}`,
      { status: 502, cause: error },
    );
  }
}

/** Parses a successful answer with `schema`, or turns an error answer into an exception. */
function parseAnswer<T extends z.ZodType>(
  status: number,
  body: string,
  schema: T,
  action: string,
): z.infer<T> {
  if (status < 200 || status >= 300) throw answerError(status, body, action);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    throw new ImageCommandError(
      "invalid_answer",
      `Cannot ${action}: the store's answer is not JSON`,
      {
        status: 502,
        cause: error,
      },
    );
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new ImageCommandError(
      "invalid_answer",
      `Cannot ${action}: ${formatZodError(parsed.error, "image store answer")}`,
      { status: 502 },
    );
  }
  return parsed.data;
}

/** The store's own error message when it sent one, else the status. */
export function answerError(status: number, body: string, action: string): ImageCommandError {
  let parsed: ApiErrorBody | undefined;
  try {
    parsed = ApiErrorBody.parse(JSON.parse(body));
  } catch {
    parsed = undefined;
  }
  const detail = parsed === undefined ? `the store answered ${status}` : parsed.error.message;
  return new ImageCommandError(parsed?.error.code ?? "store_error", `Cannot ${action}: ${detail}`, {
    // A 4xx from the store is the user's to fix (exit code 2); anything else is a failure.
    status: status >= 400 && status < 500 ? status : 502,
    field: parsed?.error.field,
  });
}
