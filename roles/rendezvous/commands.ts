/** Declares `tml rendezvous serve`; the server code loads only when it runs. */
import type { Command } from "commander";
import { envVarName } from "../../lib/config.ts";

export function registerRendezvousRoleCommands(rendezvous: Command): void {
  rendezvous.command("serve")
    .description("run a rendezvous server: reach jobs' hosts through supervisors that dial out")
    .option("--config <file>", "TOML config file (TML_CONFIG)", Deno.env.get("TML_CONFIG"))
    .option(
      "--listen <host:port>",
      `websocket endpoints and /metrics (${envVarName("listen")}, default 127.0.0.1:7300)`,
    )
    .option(
      "--switchboard <url>",
      `switchboard whose grants and tokens to accept (${envVarName("switchboard")})`,
    )
    .option(
      "--data-listen <host:port>",
      `supervisors' data connections (${envVarName("data_listen")}, default listen host, any port)`,
    )
    .option(
      "--port-range <first-last>",
      `public TCP ports for services (${envVarName("port_range")}, default 7400-7499)`,
    )
    .option(
      "--port-listen-host <host>",
      `address public ports listen on (${envVarName("port_listen_host")}, default listen host)`,
    )
    .option(
      "--public-url <url>",
      `websocket base URL users dial (${envVarName("public_url")}, default from --listen)`,
    )
    .option(
      "--public-host <host>",
      `host name in endpoints, ssh -p PORT HOST (${envVarName("public_host")})`,
    )
    .option("--tls-cert <file>", `TLS certificate chain, PEM (${envVarName("tls_cert")})`)
    .option("--tls-key <file>", `TLS private key, PEM (${envVarName("tls_key")})`)
    .option(
      "--max-connections-per-job <n>",
      `user connections per job (${envVarName("max_connections_per_job")}, default 32)`,
    )
    .option(
      "--idle-timeout <duration>",
      `close connections idle this long (${envVarName("idle_timeout")}, default 1h)`,
    )
    .option(
      "--keepalive-interval <duration>",
      `supervisor ping interval (${envVarName("keepalive_interval")}, default 10s)`,
    )
    .option(
      "--supervisor-grace <duration>",
      `how long a disconnected supervisor keeps its ports (${
        envVarName("supervisor_grace")
      }, default 30s)`,
    )
    .option(
      "--open-timeout <duration>",
      `time a supervisor has to connect a user through (${envVarName("open_timeout")}, 10s)`,
    )
    .addHelpText(
      "after",
      `
Supervisors dial out to this server and keep a websocket; they never need an inbound port.
For each service a job exposes (ssh first), the server offers a public TCP port from the range
(\`ssh -p PORT HOST\`) and the websocket /v1/jobs/JOB/connect?port=N for clients behind
HTTP-only networks (\`tml job ssh\`, \`tml job forward\`), which takes a short-lived token the
switchboard mints for the job's owner. GET /metrics shows connections and bytes per job.

Examples:
  tml rendezvous serve --listen 0.0.0.0:7300 --switchboard https://tml.example \\
    --public-host rdv.example --port-range 7400-7499 --data-listen 0.0.0.0:7301
  tml rendezvous serve --tls-cert /etc/tml/rdv.pem --tls-key /etc/tml/rdv.key --listen 0.0.0.0:443`,
    )
    .action(async (options) => {
      const { serve } = await import("./serve.ts");
      await serve({
        config: options.config,
        flags: {
          listen: options.listen,
          switchboard: options.switchboard,
          data_listen: options.dataListen,
          port_range: options.portRange,
          port_listen_host: options.portListenHost,
          public_url: options.publicUrl,
          public_host: options.publicHost,
          tls_cert: options.tlsCert,
          tls_key: options.tlsKey,
          max_connections_per_job: options.maxConnectionsPerJob,
          idle_timeout: options.idleTimeout,
          keepalive_interval: options.keepaliveInterval,
          supervisor_grace: options.supervisorGrace,
          open_timeout: options.openTimeout,
        },
      });
    });
}
