/** The rendezvous server's configuration: one zod schema, loaded in layers by `lib/config.ts`. */
import { z } from "zod";
import { ConfigError, configNumber } from "../../lib/config.ts";
import { Duration } from "../../lib/duration.ts";

const HostPort = z.string().regex(/^[^\s]*:\d{1,5}$/, "expected HOST:PORT");

export const RendezvousConfig = z.object({
  /** Address of the websocket endpoints (users and supervisors) and `/metrics`, HOST:PORT. */
  listen: HostPort.default("127.0.0.1:7300"),
  /** The switchboard whose signed grants and user tokens this server accepts. */
  switchboard: z.url().default("http://127.0.0.1:7100"),
  /** Address supervisors open data connections to; default the listen host, any free port. */
  data_listen: HostPort.optional(),
  /** Public TCP ports for exposed services, `FIRST-LAST`. */
  port_range: z.string().regex(/^\d{1,5}-\d{1,5}$/, "expected FIRST-LAST, e.g. 7400-7499")
    .default("7400-7499"),
  /** Address the public ports listen on; default the listen host. */
  port_listen_host: z.string().min(1).optional(),
  /** The websocket base URL users dial, e.g. `wss://rdv.example.org:7300`; default from listen. */
  public_url: z.url().optional(),
  /** The host name endpoints name (`ssh -p PORT HOST`); default public_url's host. */
  public_host: z.string().min(1).max(253).optional(),
  /** TLS certificate chain (PEM) for the websocket endpoints and the data port. */
  tls_cert: z.string().min(1).optional(),
  /** TLS private key (PEM); required with tls_cert. */
  tls_key: z.string().min(1).optional(),
  /** Most user connections (open or being opened) per job. */
  max_connections_per_job: configNumber().pipe(z.number().int().positive()).default(32),
  /** A user connection that carries no byte either way for this long is closed. */
  idle_timeout: Duration.default(3_600_000),
  /** How often supervisors ping; three silent intervals end a control connection. */
  keepalive_interval: Duration.default(10_000),
  /** How long a disconnected supervisor's services (and ports) wait for it to reconnect. */
  supervisor_grace: Duration.default(30_000),
  /** How long a supervisor has to bring a user connection through to the host. */
  open_timeout: Duration.default(10_000),
});
export type RendezvousConfig = z.infer<typeof RendezvousConfig>;

/** A listen address split in two; an empty or bracketed host is handled. */
export function splitHostPort(address: string): { hostname: string; port: number } {
  const separator = address.lastIndexOf(":");
  const hostname = address.slice(0, separator).replace(/^\[(.*)\]$/, "$1") || "0.0.0.0";
  return { hostname, port: Number(address.slice(separator + 1)) };
}

/** The port range as numbers, checked: within 1-65535, first <= last. */
export function portRange(config: RendezvousConfig): { first: number; last: number } {
  const [first, last] = config.port_range.split("-").map(Number);
  if (first < 1 || last > 65535 || first > last) {
    throw new ConfigError(
      `Invalid configuration: port_range: expected FIRST-LAST within 1-65535, got "${config.port_range}"`,
      { field: "port_range" },
    );
  }
  return { first, last };
}

/** The TLS files, read; undefined without TLS. Both or neither must be set. */
export async function readTls(
  config: RendezvousConfig,
): Promise<{ cert: string; key: string } | undefined> {
  if (config.tls_cert === undefined && config.tls_key === undefined) return undefined;
  if (config.tls_cert === undefined || config.tls_key === undefined) {
    const missing = config.tls_cert === undefined ? "tls_cert" : "tls_key";
    throw new ConfigError(
      `Invalid configuration: ${missing}: required when ${
        missing === "tls_cert" ? "tls_key" : "tls_cert"
      } is set`,
      { field: missing },
    );
  }
  const read = async (field: "tls_cert" | "tls_key", path: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (error) {
      throw new ConfigError(`Cannot read ${field} "${path}": ${(error as Error).message}`, {
        field,
        cause: error,
      });
    }
  };
  return {
    cert: await read("tls_cert", config.tls_cert),
    key: await read("tls_key", config.tls_key),
  };
}
