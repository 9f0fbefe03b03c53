/**
 * Declares `tml image …`: publish, fetch, mirror, inspect, build and verify images. Each
 * command's code loads only when it runs.
 */
import type { Command } from "commander";

const STORE_HELP = "image store URL (TML_IMAGE_STORE)";
const JSON_HELP = "print JSON even on a terminal";

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function registerImageCommands(program: Command): void {
  const image = program.command("image").description(
    "publish, fetch, mirror, inspect, build and verify content-addressed images",
  );

  image.command("push")
    .description("upload an image: only the blobs the store lacks, then its manifest")
    .argument("<source>", "a manifest file, or a directory holding manifest.toml or one image")
    .option("--store <url>", STORE_HELP)
    .option("--token-file <file>", "file holding the API or upload token (TML_TOKEN_FILE)")
    .option("--config <file>", "TOML config file (TML_CONFIG)")
    .addHelpText(
      "after",
      `
Blobs are looked up beside the manifest as blobs/ab/cd/ef/<sha256> (store layout), <sha256>,
or <label>. The token comes from TML_API_TOKEN or --token-file. Prints {"image_id": ...}.

Example:
  tml image create --label debian --qcow2 base.qcow2 out/ && tml image push out/`,
    )
    .action(async (source, options) => {
      const { pushCommand } = await import("./image/push.ts");
      await pushCommand(source, options);
    });

  image.command("pull")
    .description("fetch an image (manifest and every blob, verified) into a local store")
    .argument("<image-id>", "the image id (64 hex digits)")
    .argument("<dir>", "local store directory (created if missing)")
    .option("--store <url>", STORE_HELP)
    .option("--concurrency <n>", "blobs fetched at once (default 4)")
    .option("--config <file>", "TOML config file (TML_CONFIG)")
    .action(async (imageId, dir, options) => {
      const { pullCommand } = await import("./image/pull.ts");
      await pullCommand(imageId, dir, options);
    });

  image.command("mirror")
    .description("make or refresh a verified copy of a whole store, driven by its all.txt")
    .argument("<store-url>", "the store to mirror")
    .argument("<dir>", "local mirror directory (created if missing)")
    .option("--concurrency <n>", "blobs fetched at once (default 4)")
    .option("--trust-existing", "do not re-hash blobs already in the mirror")
    .action(async (storeUrl, dir, options) => {
      const { mirrorCommand } = await import("./image/mirror.ts");
      await mirrorCommand(storeUrl, dir, options);
    });

  image.command("list")
    .description("list the images of a store, newest first")
    .option("--store <url>", STORE_HELP)
    .option("--label <label>", "only images with this label")
    .option("--json", JSON_HELP)
    .option("--config <file>", "TOML config file (TML_CONFIG)")
    .action(async (options) => {
      const { listCommand } = await import("./image/show.ts");
      await listCommand(options);
    });

  image.command("show")
    .description("show an image: label, revision, attributes and blobs")
    .argument("<image-id>", "the image id (64 hex digits)")
    .option("--store <url>", STORE_HELP)
    .option("--json", JSON_HELP)
    .option("--config <file>", "TOML config file (TML_CONFIG)")
    .action(async (imageId, options) => {
      const { showCommand } = await import("./image/show.ts");
      await showCommand(imageId, options);
    });

  image.command("create")
    .description("build a QEMU image from qcow2 layers into a directory in store layout")
    .argument("<out-dir>", "directory to write blobs/, images/ and manifest.toml into")
    .requiredOption("--label <label>", "image label, e.g. debian-12")
    .option("--revision <n>", "image revision (default 0)")
    .option("--description <text>", "Markdown description")
    .option("--description-file <file>", "read the Markdown description from a file")
    .requiredOption(
      "--qcow2 <file>",
      "a qcow2 layer, base first; repeat for each overlay",
      collect,
    )
    .option("--attr <key=value>", "an image attribute; repeatable", collect)
    .addHelpText(
      "after",
      `
Each overlay must be backed by the layer before it; the base must have no backing file.
Prints {"image_id": ...}; push the result with \`tml image push <out-dir>\`.

Example:
  tml image create --label debian-12 --revision 3 --qcow2 base.qcow2 --qcow2 tools.qcow2 out/`,
    )
    .action(async (outDir, options) => {
      const { createCommand } = await import("./image/create.ts");
      await createCommand(outDir, options);
    });

  image.command("verify")
    .description("re-hash every blob and manifest of a local store; exit 1 if any is bad")
    .argument("<store-dir>", "local store directory")
    .action(async (dir) => {
      const { verifyCommand } = await import("./image/verify.ts");
      await verifyCommand(dir);
    });
}
