/** The supervisor's configuration: one zod schema, loaded in layers by `lib/config.ts`. */
import { z } from "zod";
import { configList } from "../../lib/config.ts";

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
  /** Where job directories and caches live. */
  state_dir: z.string().optional(),
});
export type SupervisorConfig = z.infer<typeof SupervisorConfig>;
