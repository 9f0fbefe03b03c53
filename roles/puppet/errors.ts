/** The puppet's error type: what went wrong inside a job's host, with a stable code. */
import { TmlError } from "../../lib/errors.ts";

export class PuppetError extends TmlError {
  constructor(code: string, message: string, options: { field?: string; cause?: unknown } = {}) {
    // Bad flags or input are usage errors (400); the rest are plain failures.
    super(code, message, { status: options.field !== undefined ? 400 : 500, ...options });
  }
}
