/**
 * The disk side of a QEMU job: checks that the cached qcow2 layers are what the manifest says
 * (`qemu-img info`: qcow2, the manifest's virtual size, not encrypted, each layer's backing
 * file is its `lower` in the site cache and the base has none), then puts a thin qcow2 overlay
 * on the read-only top layer for the job to write to. The cached layers are never written.
 */
import { dirname, resolve } from "node:path";
import { z } from "zod";
import type { QcowLayer } from "../../lib/store/mod.ts";
import { HostStartError } from "./host_driver.ts";

const ImageInfo = z.object({
  format: z.string(),
  "virtual-size": z.number(),
  encrypted: z.boolean().optional(),
  "backing-filename": z.string().optional(),
  "full-backing-filename": z.string().optional(),
});

async function qemuImg(binary: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(binary, { args, stdin: "null" }).output();
  if (!output.success) {
    throw new HostStartError(
      `Cannot run "qemu-img ${args[0]}": ${new TextDecoder().decode(output.stderr).trim()}`,
    );
  }
  return new TextDecoder().decode(output.stdout);
}

/** `qemu-img info` of an image; `what` names it in the error. */
async function readImageInfo(
  binary: string,
  path: string,
  what: string,
): Promise<z.infer<typeof ImageInfo>> {
  // -U: the image may be open in a running QEMU (another job's, or this job's own).
  const text = await qemuImg(binary, ["info", "-U", "--output=json", path]);
  const parsed = ImageInfo.safeParse(JSON.parse(text));
  if (!parsed.success) throw new HostStartError(`Cannot read qemu-img info of ${what}`);
  return parsed.data;
}

async function realPath(path: string): Promise<string> {
  return await Deno.realPath(path).catch(() => resolve(path));
}

/** Validates the chain (base first); `pathOf` gives each layer's file in the site cache. */
export async function validateLayerChain(
  qemuImgBinary: string,
  chain: QcowLayer[],
  pathOf: (layer: QcowLayer) => string,
): Promise<void> {
  const byLabel = new Map(chain.map((layer) => [layer.label, layer]));
  for (const layer of chain) {
    const path = pathOf(layer);
    const what = `layer "${layer.label}" (${path})`;
    const info = await readImageInfo(qemuImgBinary, path, what);
    if (info.format !== "qcow2") {
      throw new HostStartError(`Invalid ${what}: format "${info.format}", expected qcow2`);
    }
    if (info["virtual-size"] !== layer.virtualSize) {
      throw new HostStartError(
        `Invalid ${what}: virtual size ${info["virtual-size"]}, the manifest says ` +
          `${layer.virtualSize}`,
      );
    }
    if (info.encrypted === true) throw new HostStartError(`Invalid ${what}: it is encrypted`);
    const backing = info["backing-filename"];
    if (layer.lower === undefined) {
      if (backing !== undefined) {
        throw new HostStartError(`Invalid ${what}: the base layer has backing file "${backing}"`);
      }
      continue;
    }
    const lower = byLabel.get(layer.lower)!;
    const expected = await realPath(pathOf(lower));
    const actual = backing === undefined
      ? undefined
      : await realPath(resolve(dirname(path), backing));
    if (actual !== expected) {
      throw new HostStartError(
        `Invalid ${what}: its backing file is ${
          backing === undefined ? "missing" : `"${backing}"`
        }, expected layer "${lower.label}" (${expected})`,
      );
    }
  }
}

/** The file a qcow2 image is backed by, as an absolute path. */
export async function readBackingFile(qemuImgBinary: string, image: string): Promise<string> {
  const info = await readImageInfo(qemuImgBinary, image, `"${image}"`);
  const backing = info["full-backing-filename"] ?? info["backing-filename"];
  if (backing === undefined) throw new HostStartError(`"${image}" has no backing file`);
  return resolve(dirname(image), backing);
}

/**
 * Creates a qcow2 overlay at `overlay` backed by the read-only `top` layer, as large as the
 * layer or `sizeBytes`.
 */
export async function createOverlay(
  qemuImgBinary: string,
  top: string,
  overlay: string,
  sizeBytes?: number,
): Promise<void> {
  await qemuImg(qemuImgBinary, [
    "create",
    "-q",
    "-f",
    "qcow2",
    "-F",
    "qcow2",
    "-b",
    await realPath(top),
    overlay,
    ...(sizeBytes === undefined ? [] : [String(sizeBytes)]),
  ]);
}
