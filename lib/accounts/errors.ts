/** The accounts layer's error type: users, passwords, tokens and supervisor records. */
import { TmlError } from "../errors.ts";

export class AccountsError extends TmlError {
  constructor(code: string, message: string, options: { status?: number; field?: string } = {}) {
    super(code, message, { status: options.status ?? 400, field: options.field });
  }
}
