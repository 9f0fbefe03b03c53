/** The switchboard's configuration: one zod schema, loaded in layers by `lib/config.ts`. */
import { z } from "zod";
import { configNumber } from "../../lib/config.ts";
import { Duration } from "../../lib/duration.ts";

export const SwitchboardConfig = z.object({
  /** Address to listen on, HOST:PORT; port 0 picks a free one. */
  listen: z.string().regex(/^[^\s:]*:\d{1,5}$/, "expected HOST:PORT").default("127.0.0.1:7100"),
  /** PostgreSQL URL; without one the switchboard uses embedded PGlite under `data_dir`. */
  database_url: z.string().optional(),
  /** Directory for embedded state (PGlite). */
  data_dir: z.string().default(".tml-data/switchboard"),
  /** How often each side of a supervisor websocket pings the other. */
  keepalive_interval: Duration.default(10_000),
  /** How long a supervisor may stay disconnected before its jobs end as dropped. */
  supervisor_grace: Duration.default(60_000),
  /** How long a supervisor has to confirm a stop before the switchboard terminates the job. */
  stop_grace: Duration.default(120_000),
  /** Default job timeout when a job does not give one. */
  default_job_timeout: Duration.default(3_600_000),
  /** Default queue timeout when a job does not give one. */
  default_queue_timeout: Duration.default(86_400_000),
  /** Image store whose images jobs may use; enqueue checks the image exists there. */
  image_store_url: z.url().optional(),
  /** Most console bytes stored per job; the rest is dropped with a note. */
  console_max_bytes: configNumber().default(4 * 1024 * 1024),
  /** Largest accepted request body, in bytes. */
  max_body_bytes: configNumber().default(1024 * 1024),
});
export type SwitchboardConfig = z.infer<typeof SwitchboardConfig>;
