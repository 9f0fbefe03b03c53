/**
 * The data port: supervisors open one TCP (or TLS) connection here per user connection, send
 * `DATA_PREAMBLE` + ticket + "\n", and from then on carry the user's bytes. Exactly the header
 * is read (the host's first bytes may follow it at once); a connection that sends anything else,
 * or nothing in time, is closed. At most `MAX_UNIDENTIFIED` connections may be waiting for their
 * header at once, so a flood of idle connections cannot pile up.
 */
import type { Logger } from "../../lib/log.ts";
import { DATA_HEADER_BYTES, DATA_PREAMBLE, Ticket } from "../../lib/protocol/rendezvous.ts";
import type { Tickets } from "./tickets.ts";

const HEADER_TIMEOUT_MS = 10_000;
const MAX_UNIDENTIFIED = 256;

export async function serveDataPort(
  listener: Deno.Listener,
  tickets: Tickets,
  log: Logger,
): Promise<void> {
  let unidentified = 0;
  try {
    for await (const conn of listener) {
      if (unidentified >= MAX_UNIDENTIFIED) {
        log.warn("refusing a data connection: too many without a header yet");
        conn.close();
        continue;
      }
      unidentified++;
      void identify(conn, tickets).finally(() => unidentified--);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}

async function identify(conn: Deno.Conn, tickets: Tickets): Promise<void> {
  const timer = setTimeout(() => close(conn), HEADER_TIMEOUT_MS);
  let ticket: string | undefined;
  try {
    const header = new Uint8Array(DATA_HEADER_BYTES);
    for (let filled = 0; filled < header.length;) {
      const count = await conn.read(header.subarray(filled));
      if (count === null) break;
      filled += count;
      if (filled === header.length) ticket = parseHeader(header);
    }
  } catch {
    // Reset, TLS failure, or closed by the timer: the connection is simply dropped.
  } finally {
    clearTimeout(timer);
  }
  if (ticket === undefined) return close(conn);
  if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
  if (!tickets.deliver(ticket, conn)) close(conn);
}

function parseHeader(header: Uint8Array): string | undefined {
  const text = new TextDecoder().decode(header);
  if (!text.startsWith(DATA_PREAMBLE) || !text.endsWith("\n")) return undefined;
  const ticket = text.slice(DATA_PREAMBLE.length, -1);
  return Ticket.safeParse(ticket).success ? ticket : undefined;
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
