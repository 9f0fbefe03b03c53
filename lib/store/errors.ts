/**
 * The image store's error type: one stable code per way a store operation fails, each with the
 * HTTP status a store server answers with.
 */
import { TmlError, type TmlErrorOptions } from "../errors.ts";

export type StoreErrorCode =
  | "invalid_digest"
  | "digest_mismatch"
  | "size_mismatch"
  | "not_found"
  | "invalid_manifest"
  | "invalid_range"
  | "fetch_failed";

const STATUS: Record<StoreErrorCode, number> = {
  invalid_digest: 400,
  digest_mismatch: 422,
  size_mismatch: 422,
  not_found: 404,
  invalid_manifest: 400,
  invalid_range: 416,
  fetch_failed: 502,
};

export class StoreError extends TmlError {
  declare readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options: TmlErrorOptions = {}) {
    super(code, message, { status: STATUS[code], ...options });
  }
}
