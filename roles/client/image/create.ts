/**
 * `tml image create`: builds a QEMU image from qcow2 layers. Each layer is inspected with
 * `qemu-img info` (format, virtual size, backing file), the chain is checked (the base has no
 * backing file; every overlay is backed by the layer before it, by path or by content), and the
 * result is written in store layout: the blobs under `blobs/`, the manifest under `images/`, and
 * a copy of the manifest as `manifest.toml`, so the directory is both a store and a push source.
 */
import { basename, dirname, resolve } from "node:path";
import { printJson } from "../../../lib/cli/output.ts";
import { openDirectoryStore } from "../../../lib/store/blob_store.ts";
import {
  BASE_EXTENSION,
  BLOB_LABEL,
  imageIdOf,
  type ImageManifest,
  QEMU_LAYERED,
  writeManifest,
} from "../../../lib/store/manifest.ts";
import { sha256File } from "../../../lib/store/sha256.ts";
import { ImageCommandError } from "./errors.ts";
import { MANIFEST_FILE } from "./push_source.ts";
import { qemuImgInfo } from "./qemu_img.ts";

export interface CreateOptions {
  label: string;
  revision?: string;
  description?: string;
  descriptionFile?: string;
  qcow2: string[];
  attr?: string[];
}

interface Layer {
  path: string;
  label: string;
  sha256: string;
  size: number;
  virtualSize: number;
}

export async function createCommand(outDir: string, options: CreateOptions): Promise<void> {
  const revision = parseRevision(options.revision);
  const description = options.descriptionFile === undefined
    ? options.description ?? ""
    : await Deno.readTextFile(options.descriptionFile);
  const attrs = parseAttrs(options.attr ?? []);
  const layers = await inspectLayers(options.qcow2);

  const blobs: ImageManifest["blobs"] = {};
  layers.forEach((layer, index) => {
    blobs[layer.label] = {
      sha256: layer.sha256,
      size: layer.size,
      attrs: {
        [`${QEMU_LAYERED}.blob-virtual-size`]: String(layer.virtualSize),
        ...(index === 0 ? {} : { [`${QEMU_LAYERED}.lower`]: layers[index - 1].label }),
      },
    };
  });
  const bytes = writeManifest({
    label: options.label,
    revision,
    description,
    attrs: { ...attrs, [`${QEMU_LAYERED}.head`]: layers[layers.length - 1].label },
    blobs,
    extensions: [BASE_EXTENSION],
  });
  const imageId = imageIdOf(bytes);

  await Deno.mkdir(outDir, { recursive: true });
  const store = await openDirectoryStore(outDir);
  for (const layer of layers) {
    if (await store.has(layer.sha256)) continue;
    using file = await Deno.open(layer.path, { read: true });
    await store.put(layer.sha256, file.readable, layer.size);
  }
  await store.putManifest(bytes);
  await writeFileAtomically(`${outDir}/${MANIFEST_FILE}`, bytes);

  printJson({
    image_id: imageId,
    label: options.label,
    revision,
    blobs: layers.map(({ label, sha256, size, virtualSize }) => ({
      label,
      sha256,
      size,
      virtual_size: virtualSize,
    })),
  });
}

/** Inspects every layer and checks that each overlay is backed by the one before it. */
async function inspectLayers(paths: string[]): Promise<Layer[]> {
  const layers: Layer[] = [];
  const labels = new Set<string>();
  for (const [index, path] of paths.entries()) {
    const info = await qemuImgInfo(path);
    if (info.format !== "qcow2") {
      throw layerError(path, `expected a qcow2 file, got format "${info.format}"`);
    }
    const backing = info["full-backing-filename"] ?? info["backing-filename"];
    if (index === 0 && backing !== undefined) {
      throw layerError(
        path,
        `the base layer has a backing file "${backing}"; give that file first as --qcow2`,
      );
    }
    const sha256 = await sha256File(path);
    if (index > 0) {
      const lower = layers[index - 1];
      if (backing === undefined) {
        throw layerError(path, `it has no backing file, but it is stacked on "${lower.path}"`);
      }
      const format = info["backing-filename-format"];
      if (format !== undefined && format !== "qcow2") {
        throw layerError(path, `its backing file format is "${format}", expected "qcow2"`);
      }
      await checkBacking(path, resolve(dirname(path), backing), lower);
    }
    const label = uniqueLabel(path, index, labels);
    const { size } = await Deno.stat(path);
    layers.push({ path, label, sha256, size, virtualSize: info["virtual-size"] });
  }
  return layers;
}

/** An overlay's backing file must be the layer below it: the same file, or the same bytes. */
async function checkBacking(path: string, backing: string, lower: Layer): Promise<void> {
  const [backingReal, lowerReal] = await Promise.all([
    Deno.realPath(backing).catch(() => undefined),
    Deno.realPath(lower.path),
  ]);
  if (backingReal === lowerReal) return;
  if (backingReal !== undefined && await sha256File(backingReal) === lower.sha256) return;
  throw layerError(
    path,
    `its backing file "${backing}" is not the layer below it ("${lower.path}")` +
      (backingReal === undefined ? " and does not exist" : ""),
  );
}

/** A blob label from the file name (`debian-base.qcow2` -> `debian-base`), made unique. */
function uniqueLabel(path: string, index: number, taken: Set<string>): string {
  const stem = basename(path).replace(/\.qcow2$/i, "").replace(/[^A-Za-z0-9_-]/g, "_")
    .slice(0, 56);
  let label = BLOB_LABEL.test(stem) ? stem : `layer${index}`;
  if (taken.has(label)) label = `${label}-${index}`;
  taken.add(label);
  return label;
}

function parseRevision(value: string | undefined): number {
  if (value === undefined) return 0;
  if (!/^\d{1,15}$/.test(value)) {
    throw new ImageCommandError(
      "invalid_revision",
      `Invalid --revision: expected a non-negative integer, got "${value}"`,
      { field: "revision" },
    );
  }
  return Number(value);
}

function parseAttrs(pairs: string[]): Record<string, string> {
  const attrs: Record<string, string> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf("=");
    if (equals <= 0) {
      throw new ImageCommandError(
        "invalid_attr",
        `Invalid --attr: expected KEY=VALUE, got "${pair}"`,
        { field: "attr" },
      );
    }
    attrs[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  return attrs;
}

function layerError(path: string, detail: string): ImageCommandError {
  return new ImageCommandError("invalid_layer", `Cannot use layer "${path}": ${detail}`, {
    field: "qcow2",
  });
}

async function writeFileAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeFile(temp, bytes);
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
