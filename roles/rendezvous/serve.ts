/**
 * `tml rendezvous serve`: listens for supervisors and users (websockets, `/metrics`), for the
 * supervisors' data connections, and on public ports for the services jobs expose; prints the
 * URL it listens on and its data port. All state is in memory: after a restart supervisors
 * reconnect and expose their job's services again. SIGINT/SIGTERM stop it.
 */
import { SwitchboardClient } from "../../lib/client/switchboard_client.ts";
import { loadConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { buildApp } from "./http_app.ts";
import { portRange, readTls, RendezvousConfig, splitHostPort } from "./config.ts";
import { serveDataPort } from "./data_port.ts";
import { KeyRing } from "./key_ring.ts";
import { PortPool } from "./port_pool.ts";
import { ServiceTable } from "./service_table.ts";
import { Tickets } from "./tickets.ts";

export interface ServeOptions {
  config?: string;
  flags: Record<string, unknown>;
}

export async function serve(options: ServeOptions): Promise<void> {
  const config = await loadConfig(RendezvousConfig, { file: options.config, flags: options.flags });
  const range = portRange(config);
  const tls = await readTls(config);
  const log = createLogger("rendezvous");
  const listen = splitHostPort(config.listen);
  const data = splitHostPort(config.data_listen ?? `${config.listen.replace(/:\d+$/, "")}:0`);

  const dataListener = tls === undefined
    ? Deno.listen({ hostname: data.hostname, port: data.port })
    : Deno.listenTls({ hostname: data.hostname, port: data.port, ...tls });
  const keys = new KeyRing(new SwitchboardClient(config.switchboard), log.child("keys"));
  await keys.refresh();
  const tickets = new Tickets(config.open_timeout);
  let publicHost = config.public_host;
  // The app needs the bound port (for the public URL), so requests go through a closure: none
  // can arrive before `app` is set, as nothing awaits in between.
  const server = Deno.serve({
    hostname: listen.hostname,
    port: listen.port,
    ...tls,
    onListen: () => {},
  }, (request, info) => app.fetch(request, info));
  const scheme = tls === undefined ? "ws" : "wss";
  const bound = server.addr as Deno.NetAddr;
  const publicUrl = config.public_url ?? `${scheme}://${hostForUrl(bound.hostname)}:${bound.port}`;
  publicHost ??= new URL(publicUrl).hostname.replace(/^\[(.*)\]$/, "$1");

  const table = new ServiceTable({
    ports: new PortPool(config.port_listen_host ?? listen.hostname, range.first, range.last),
    tickets,
    log,
    publicHost,
    maxConnectionsPerJob: config.max_connections_per_job,
    idleTimeoutMs: config.idle_timeout,
    supervisorGraceMs: config.supervisor_grace,
  });
  const app = buildApp({
    keys,
    table,
    log,
    control: {
      keys,
      table,
      tickets,
      log: log.child("control"),
      welcome: {
        data_port: (dataListener.addr as Deno.NetAddr).port,
        data_tls: tls !== undefined,
        public_url: publicUrl,
        keepalive_interval_ms: config.keepalive_interval,
      },
    },
  });
  const dataPort = serveDataPort(dataListener, tickets, log.child("data"));

  const url = `${tls === undefined ? "http" : "https"}://${
    hostForUrl(bound.hostname)
  }:${bound.port}`;
  console.log(`listening on ${url}`);
  console.log(`data port ${(dataListener.addr as Deno.NetAddr).port}`);
  log.info("rendezvous server started", {
    url,
    public_url: publicUrl,
    port_range: config.port_range,
    switchboard: config.switchboard,
    tls: tls !== undefined,
  });

  const shutdown = async () => {
    log.info("rendezvous server shutting down");
    table.close();
    dataListener.close();
    await server.shutdown();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
  await Promise.all([server.finished, dataPort]);
}

function hostForUrl(hostname: string): string {
  if (hostname === "0.0.0.0" || hostname === "::") return Deno.hostname();
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}
