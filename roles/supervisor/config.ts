/**
 * The supervisor's configuration: one zod schema, loaded in layers by `lib/config.ts`
 * (defaults < TOML file < `TML_*` environment < flags). The same keys serve every host driver;
 * a driver's own keys (QEMU's `qemu_binary`, …) extend this schema.
 */
import { z } from "zod";
import { ConfigError, configList, loadConfig } from "../../lib/config.ts";
import { Duration } from "../../lib/duration.ts";
import { ExposedService } from "../../lib/protocol/rendezvous.ts";

/** `NAME=PORT`, e.g. `ssh=22`, as an exposed service. */
const ServiceSpec = z.string()
  .regex(/^[^=]+=\d{1,5}$/, "expected NAME=PORT such as ssh=22")
  .transform((text) => ({ name: text.split("=")[0], port: Number(text.split("=")[1]) }))
  .pipe(ExposedService);

export const SupervisorConfig = z.object({
  /** Base URL of the switchboard, e.g. http://switchboard:7100. */
  switchboard: z.url(),
  /** This supervisor's id, as registered with `tml admin supervisor register`. */
  id: z.uuid(),
  /** File holding this supervisor's token. */
  token_file: z.string().min(1),
  /** Tags to advertise; they replace the registered ones. */
  tags: configList().optional(),
  /** Image store to fetch job images from. */
  image_store: z.url().optional(),
  /** Where job directories and caches live (default `.tml-data/supervisor-<id>`). */
  state_dir: z.string().min(1).optional(),
  /** How often the puppet sends a heartbeat; three missed in a row mean a hung host. */
  heartbeat_interval: Duration.default(2_000),
  /** How long a host has to report ready before the job fails to start. */
  ready_timeout: Duration.default(120_000),
  /** How long a workload gets between SIGTERM and SIGKILL when its job stops. */
  stop_grace: Duration.default(5_000),
  /** A rendezvous server to expose each job's host services on (`tml job ssh`); none if unset. */
  rendezvous: z.url().optional(),
  /** The host ports exposed there, `NAME=PORT`; `ssh` is what `tml job ssh` reaches. */
  rendezvous_services: configList().pipe(z.array(ServiceSpec).max(16)).default([
    { name: "ssh", port: 22 },
  ]),
});
export type SupervisorConfig = z.infer<typeof SupervisorConfig>;

/** The loaded configuration, with the token read and the state directory decided. */
export type ResolvedSupervisorConfig = SupervisorConfig & { state_dir: string; token: string };

export interface SupervisorConfigSources {
  file?: string;
  flags: Record<string, unknown>;
  env?: Record<string, string>;
}

/** Loads `SupervisorConfig`, or a driver's extension of it (`schema`). */
export async function loadSupervisorConfig<T extends typeof SupervisorConfig>(
  sources: SupervisorConfigSources,
  schema?: T,
): Promise<z.infer<T> & ResolvedSupervisorConfig> {
  const config = await loadConfig(schema ?? SupervisorConfig, sources) as z.infer<T>;
  let token: string;
  try {
    token = (await Deno.readTextFile(config.token_file)).trim();
  } catch (error) {
    throw new ConfigError(
      `Cannot read token_file "${config.token_file}": ${(error as Error).message}`,
      { field: "token_file", cause: error },
    );
  }
  if (token === "") {
    throw new ConfigError(`Invalid token_file "${config.token_file}": it is empty`, {
      field: "token_file",
    });
  }
  return { ...config, state_dir: config.state_dir ?? `.tml-data/supervisor-${config.id}`, token };
}
