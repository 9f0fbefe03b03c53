/** `tml image-store gc`: runs garbage collection on a store root and prints a JSON summary. */
import { loadConfig } from "../../lib/config.ts";
import { TmlError } from "../../lib/errors.ts";
import { parseDuration } from "../../lib/duration.ts";
import { printJson } from "../../lib/cli/output.ts";
import { DirectoryBackend } from "../../lib/store/directory_backend.ts";
import { ImageStoreConfig } from "./config.ts";
import { collectGarbage } from "./gc.ts";
import { GcLock } from "./gc_lock.ts";

export interface GcCommandOptions {
  config?: string;
  root?: string;
  grace: string;
  dryRun: boolean;
}

export async function gcCommand(options: GcCommandOptions): Promise<void> {
  // The root comes from the same places as the server's: flag, TML_ROOT, the config file.
  const { root } = await loadConfig(ImageStoreConfig.pick({ root: true }), {
    file: options.config,
    flags: { root: options.root },
    strict: false,
  });
  const graceMs = parseDuration(options.grace, "grace");
  await Deno.stat(root).catch((error) => {
    throw new TmlError("not_found", `Cannot collect garbage in "${root}": ${error.message}`, {
      status: 400,
      field: "root",
    });
  });
  const lock = new GcLock(root);
  const report = await collectGarbage({
    backend: new DirectoryBackend(root),
    graceMs,
    dryRun: options.dryRun,
    lock: (removal) => lock.exclusive(removal),
  });
  printJson(report);
}
