/**
 * The switchboard checks at enqueue that a job's image exists in the configured image store:
 * a real `tml image-store serve` holding one image, and a switchboard pointed at it.
 */
import { assertEquals } from "../../lib/testing/asserts.ts";
import { openDirectoryStore } from "../../lib/store/blob_store.ts";
import { imageIdOf, writeManifest } from "../../lib/store/manifest.ts";
import { sha256Bytes } from "../../lib/store/sha256.ts";
import { TmlProcess } from "../support/tml_process.ts";
import { api, createUser, registerSupervisor, startSpine } from "../support/spine.ts";

Deno.test({
  name: "enqueue refuses an image the image store does not have, and accepts one it has",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "tml-store-" });
    const blob = new TextEncoder().encode("a tiny kernel");
    const digest = sha256Bytes(blob);
    const store = openDirectoryStore(root);
    await store.put(digest, ReadableStream.from([blob]), blob.length);
    const manifest = writeManifest({
      label: "tiny",
      revision: 1,
      description: "a test image",
      attrs: {},
      blobs: { kernel: { sha256: digest, size: blob.length, attrs: {} } },
      extensions: ["org.tockos.treadmill.manifest-ext.base"],
    });
    const imageId = await store.putManifest(manifest);
    assertEquals(imageId, imageIdOf(manifest));

    const imageStore = TmlProcess.start([
      "image-store",
      "serve",
      "--listen",
      "127.0.0.1:0",
      "--root",
      root,
    ]);
    const storeUrl = (await imageStore.waitFor(/listening on (http:\/\/\S+)/))[1];
    const spine = await startSpine(["--image-store-url", storeUrl]);
    try {
      const { token } = await createUser(spine, "imager", [
        "submit_job",
        "run_job_on_supervisor:*",
      ]);
      await registerSupervisor(spine, "img-sup", ["board:img"]);
      const unknown = await api(spine, token, "POST", "/jobs", {
        image_id: "d".repeat(64),
        tag_config: "board:img",
      });
      assertEquals(unknown.status, 400);
      assertEquals((unknown.body as { error: Record<string, string> }).error, {
        code: "unknown_image",
        field: "image_id",
        message: `Cannot enqueue job: image "${"d".repeat(64)}" does not exist in the image store`,
      });
      const known = await api(spine, token, "POST", "/jobs", {
        image_id: imageId,
        tag_config: "board:img",
      });
      assertEquals(known.status, 201);
      const listed = await api(spine, token, "GET", "/jobs");
      assertEquals((listed.body as { jobs: unknown[] }).jobs.length, 1);
    } finally {
      await spine.stop();
      await imageStore.kill();
      await Deno.remove(root, { recursive: true });
    }
  },
});
