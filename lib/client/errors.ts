/**
 * The client layer's error: an error answer from the switchboard (its code, HTTP status, field
 * and message), an answer that does not match the protocol, or a network failure (status 0,
 * message naming the URL).
 */
import { TmlError } from "../errors.ts";

export class ClientError extends TmlError {
  constructor(code: string, message: string, status: number, field?: string, cause?: unknown) {
    super(code, message, { status, field, cause });
  }

  /** True when trying again later may succeed: no answer, overload, or a gateway error. */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status === 502 ||
      this.status === 503 || this.status === 504;
  }
}
