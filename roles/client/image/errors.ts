/**
 * The error type of the `tml image` commands: bad input files, a refusing or unreachable image
 * store, a corrupt local store. A 4xx status makes the CLI exit with the usage code (2).
 */
import { TmlError } from "../../../lib/errors.ts";

export class ImageCommandError extends TmlError {
  constructor(
    code: string,
    message: string,
    options: { status?: number; field?: string; cause?: unknown } = {},
  ) {
    super(code, message, { status: options.status ?? 400, ...options });
  }
}
