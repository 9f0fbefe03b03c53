/**
 * The rendezvous server's error: why a user connection, an exposure or a control connection is
 * refused. Each kind has an HTTP status (for plain requests) and a websocket close code (for a
 * refused user websocket, `UserCloseCode`), so both kinds of client read the same message.
 */
import { TmlError } from "../../lib/errors.ts";
import { UserCloseCode } from "../../lib/protocol/rendezvous.ts";

const KINDS = {
  bad_request: { status: 400, closeCode: UserCloseCode.badRequest },
  unauthorized: { status: 401, closeCode: UserCloseCode.unauthorized },
  forbidden: { status: 403, closeCode: UserCloseCode.forbidden },
  not_found: { status: 404, closeCode: UserCloseCode.notFound },
  too_many_connections: { status: 429, closeCode: UserCloseCode.tooManyConnections },
  host_unreachable: { status: 502, closeCode: UserCloseCode.hostUnreachable },
  unavailable: { status: 503, closeCode: UserCloseCode.unavailable },
  idle: { status: 408, closeCode: UserCloseCode.idle },
} as const;

export type RefusalKind = keyof typeof KINDS;

export class RendezvousError extends TmlError {
  readonly closeCode: number;

  constructor(
    kind: RefusalKind,
    message: string,
    options: { field?: string; cause?: unknown } = {},
  ) {
    super(kind, message, { status: KINDS[kind].status, ...options });
    this.closeCode = KINDS[kind].closeCode;
  }
}
