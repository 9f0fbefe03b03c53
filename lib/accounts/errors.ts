/** The accounts layer's error type: users, passwords, tokens and supervisor records. */
import { TmlError } from "../errors.ts";

export class AccountsError extends TmlError {
  constructor(code: string, message: string, status = 400) {
    super(code, message, { status });
  }
}
