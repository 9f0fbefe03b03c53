/**
 * The base error type of every tml layer: a stable code, an HTTP status, a public message and a
 * private cause. The cause is logged but never serialised, which keeps secrets out of responses.
 *
 * Messages follow Deno std's grammar: sentence case, no trailing period, the failed action first,
 * detail after a colon, values quoted: `Cannot enqueue job: image "ab12…" does not exist`.
 */
export interface TmlErrorOptions {
  /** HTTP status to answer with when the error crosses an HTTP boundary. */
  status?: number;
  /** The input field at fault, e.g. `parameters.x.value`. */
  field?: string;
  /** Private detail: logged, never sent to a client. */
  cause?: unknown;
}

export class TmlError extends Error {
  readonly code: string;
  readonly status: number;
  readonly field?: string;

  constructor(code: string, message: string, options: TmlErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? 500;
    this.field = options.field;
  }

  /** The public, serialisable part of the error; never includes the cause. */
  toJSON(): { code: string; message: string; field?: string } {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, field: this.field };
  }
}

/** Describes any thrown value in one line for a log, without a stack. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
