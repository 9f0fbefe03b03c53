/** Port arguments of the rendezvous commands: `22`, and `LOCAL:REMOTE` for `tml job forward`. */
import { ClientError } from "../../lib/client/errors.ts";

/** A TCP port from a command-line argument; a usage error naming the argument otherwise. */
export function parsePort(text: string, name: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new ClientError(
      "invalid_argument",
      `Invalid ${name}: expected a port number from 1 to 65535, got "${text}"`,
      400,
      name,
    );
  }
  return port;
}

/** `LOCAL_PORT:REMOTE_PORT`, or one port for both. */
export function parseForward(text: string): { local: number; remote: number } {
  const parts = text.split(":");
  if (parts.length > 2) {
    throw new ClientError(
      "invalid_argument",
      `Invalid LOCAL_PORT:REMOTE_PORT: expected two ports such as 8080:80, got "${text}"`,
      400,
      "LOCAL_PORT:REMOTE_PORT",
    );
  }
  const local = parsePort(parts[0], "LOCAL_PORT");
  return { local, remote: parts.length === 2 ? parsePort(parts[1], "REMOTE_PORT") : local };
}
