/** The client layer's error: an HTTP error answer, or a network failure, with the URL. */
import { TmlError } from "../errors.ts";

export class ClientError extends TmlError {
  constructor(code: string, message: string, status: number, field?: string, cause?: unknown) {
    super(code, message, { status, field, cause });
  }
}
