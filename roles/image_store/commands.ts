/** Declares the `tml image-store` commands; the code behind each loads when it runs. */
import type { Command } from "commander";
import { envVarName } from "../../lib/config.ts";

export function registerImageStoreCommands(program: Command): void {
  const store = program.command("image-store").description(
    "serve a content-addressed image store, and collect its garbage",
  );

  store.command("serve")
    .description("serve blobs and images over HTTP, accept verified uploads")
    .option("--config <file>", "TOML config file (TML_CONFIG)", Deno.env.get("TML_CONFIG"))
    .option(
      "--listen <host:port>",
      `address to listen on (${envVarName("listen")}, default 127.0.0.1:7200)`,
    )
    .option(
      "--root <dir>",
      `store directory (${envVarName("root")}, default .tml-data/image-store)`,
    )
    .option(
      "--upload-token-file <file>",
      `file holding the upload token of a standalone store (${envVarName("upload_token_file")})`,
    )
    .option(
      "--switchboard <url>",
      `switchboard whose API tokens with push_image may upload (${envVarName("switchboard")})`,
    )
    .option(
      "--max-blob-bytes <n>",
      `largest accepted blob (${envVarName("max_blob_bytes")}, default 256 GiB)`,
    )
    .addHelpText(
      "after",
      `
Serves GET/HEAD /blobs/ab/cd/ef/<sha256>, /images/ab/cd/ef/<id> and /all.txt (mirror with
\`wget -x -nH -B <url>/ -i <url>/all.txt\`), PUT /blobs/<sha256> and /images/<id> with a bearer
token, and the JSON listing API under /api/v1/images.

Examples:
  tml image-store serve --listen 0.0.0.0:7200 --root /srv/tml-images --switchboard https://tml.example
  tml image-store serve --root ./store --upload-token-file ./upload.token`,
    )
    .action(async (options) => {
      const { serve } = await import("./serve.ts");
      await serve({
        config: options.config,
        flags: {
          listen: options.listen,
          root: options.root,
          upload_token_file: options.uploadTokenFile,
          switchboard: options.switchboard,
          max_blob_bytes: options.maxBlobBytes,
        },
      });
    });

  store.command("gc")
    .description("remove blobs that no image references")
    .option("--config <file>", "TOML config file (TML_CONFIG)", Deno.env.get("TML_CONFIG"))
    .option("--root <dir>", `store directory (${envVarName("root")})`)
    .option(
      "--grace <duration>",
      "keep unreferenced blobs younger than this, e.g. uploads in progress (default 24h)",
      "24h",
    )
    .option("--dry-run", "only list what would be removed")
    .addHelpText(
      "after",
      `
Prints a JSON summary. Safe while the server runs: a blob younger than the grace period (by
modification time) is kept, so a blob uploaded for an image not yet published survives, and
removal waits for images being published (both lock <root>/gc.lock).`,
    )
    .action(async (options) => {
      const { gcCommand } = await import("./gc_command.ts");
      await gcCommand({
        config: options.config,
        root: options.root,
        grace: options.grace,
        dryRun: options.dryRun === true,
      });
    });
}
