/**
 * Reads and writes Treadmill image manifests: the TOML file whose SHA-256 is an image's id.
 * Treadmill's format is read as is; unknown keys and extensions are ignored, and the limits
 * below are enforced with errors that name the TOML key at fault.
 */
import { parse, TomlError } from "smol-toml";
import { z } from "zod";
import { Sha256Digest } from "./layout.ts";
import { StoreError } from "./errors.ts";
import { sha256Bytes } from "./sha256.ts";

export const MANIFEST_MAX_BYTES = 1024 * 1024;
export const LABEL_MAX_BYTES = 64;
export const DESCRIPTION_MAX_BYTES = 64 * 1024;
export const BLOBS_MAX = 4096;
export const BLOB_LABEL = /^[A-Za-z0-9_-]{1,64}$/;

/** The one manifest extension every Treadmill manifest carries and tml requires. */
export const BASE_EXTENSION = "org.tockos.treadmill.manifest-ext.base";

/** The TOML keys of the base extension. */
export const MANIFEST_KEYS = {
  label: `${BASE_EXTENSION}.label`,
  revision: `${BASE_EXTENSION}.revision`,
  description: `${BASE_EXTENSION}.description`,
  attrs: `${BASE_EXTENSION}.attrs`,
  blobs: `${BASE_EXTENSION}.blobs`,
  sha256: `${BASE_EXTENSION}.sha256-digest`,
  size: `${BASE_EXTENSION}.size`,
} as const;
const K = MANIFEST_KEYS;

export const ManifestBlob = z.object({
  sha256: Sha256Digest,
  size: z.number().int().nonnegative(),
  attrs: z.record(z.string(), z.string()),
});
export type ManifestBlob = z.infer<typeof ManifestBlob>;

/** A parsed manifest; also the JSON shape servers answer with. */
export const ImageManifest = z.object({
  label: z.string(),
  revision: z.number().int().nonnegative(),
  description: z.string(),
  attrs: z.record(z.string(), z.string()),
  blobs: z.record(z.string(), ManifestBlob),
  extensions: z.array(z.string()),
});
export type ImageManifest = z.infer<typeof ImageManifest>;

// ---- parsing ------------------------------------------------------------------------------

function tomlTypeOf(value: unknown): string {
  if (typeof value === "bigint") return "integer";
  if (typeof value === "number") return "float";
  if (Array.isArray(value)) return "array";
  if (value instanceof Date) return "datetime";
  if (typeof value === "object" && value !== null) return "table";
  return typeof value;
}

/** A zod error callback: "required" for a missing key, else "expected X, got Y". */
function expected(what: string) {
  return (issue: { input?: unknown }) =>
    issue.input === undefined ? "required" : `expected ${what}, got ${tomlTypeOf(issue.input)}`;
}

function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

const TomlString = z.string({ error: expected("a string") });
// Integers are parsed as bigint so that a float such as `size = 1.0` is told apart and refused.
const TomlCount = z.bigint({ error: expected("an integer") })
  .min(0n, "expected a non-negative integer")
  .max(BigInt(Number.MAX_SAFE_INTEGER), `expected at most ${Number.MAX_SAFE_INTEGER}`)
  .transform(Number);
const TomlStringMap = z.record(z.string(), TomlString, { error: expected("a table") });

const RawBlob = z.object({
  [K.sha256]: TomlString.regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits"),
  [K.size]: TomlCount,
  [K.attrs]: TomlStringMap.optional(),
}, { error: expected("a table") });

const RawManifest = z.object({
  manifest_version: z.bigint({ error: expected("the integer 0") }).refine(
    (version) => version === 0n,
    "expected 0, the only manifest version tml reads",
  ),
  manifest_extensions: z.array(TomlString, { error: expected("an array of strings") }).refine(
    (extensions) => extensions.includes(BASE_EXTENSION),
    `must include "${BASE_EXTENSION}"`,
  ),
  [K.label]: TomlString.refine(
    (label) => utf8Length(label) <= LABEL_MAX_BYTES,
    `must be at most ${LABEL_MAX_BYTES} bytes`,
  ),
  [K.revision]: TomlCount,
  [K.description]: TomlString.refine(
    (description) => utf8Length(description) <= DESCRIPTION_MAX_BYTES,
    `must be at most ${DESCRIPTION_MAX_BYTES} bytes`,
  ),
  [K.attrs]: TomlStringMap.optional(),
  [K.blobs]: z.record(
    z.string().regex(BLOB_LABEL, `blob labels must match ${BLOB_LABEL.source}`),
    RawBlob,
    { error: expected("a table") },
  ).refine(
    (blobs) => Object.keys(blobs).length <= BLOBS_MAX,
    `must list at most ${BLOBS_MAX} blobs`,
  ).optional(),
});

/** Writes a key path the way TOML spells it: bare where possible, else quoted. */
function tomlKeyPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(document)";
  return path.map((segment) => {
    const key = String(segment);
    return /^[A-Za-z0-9_-]+$/.test(key) ? key : tomlString(key);
  }).join(".");
}

function invalidManifest(detail: string, field?: string): StoreError {
  return new StoreError("invalid_manifest", `Cannot read image manifest: ${detail}`, { field });
}

/** `key: problem (manifest)`, the grammar of every validation error (lib/zod_issues.ts). */
function keyProblem(field: string, problem: string): string {
  return `${field}: ${problem} (manifest)`;
}

/** An error about one key, which it names. */
function invalidKey(field: string, problem: string): StoreError {
  return invalidManifest(keyProblem(field, problem), field);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  // A bad record key reports the key's own issue one level down; its message says more.
  const message = issue.code === "invalid_key" ? issue.issues[0]?.message : issue.message;
  return keyProblem(tomlKeyPath(issue.path), message ?? "invalid");
}

/** Parses and validates a manifest; throws StoreError `invalid_manifest` naming the key. */
export function parseManifest(bytes: Uint8Array | string): ImageManifest {
  const size = typeof bytes === "string" ? utf8Length(bytes) : bytes.length;
  if (size > MANIFEST_MAX_BYTES) {
    throw invalidManifest(`manifest is ${size} bytes, more than the ${MANIFEST_MAX_BYTES} allowed`);
  }
  let text: string;
  try {
    text = typeof bytes === "string"
      ? bytes
      : new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new StoreError("invalid_manifest", "Cannot read image manifest: not valid UTF-8", {
      cause: error,
    });
  }
  let document: unknown;
  try {
    document = parse(text, { integersAsBigInt: true });
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const reason = error.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
    throw invalidManifest(`invalid TOML at line ${error.line} column ${error.column}: ${reason}`);
  }
  const result = RawManifest.safeParse(document);
  if (!result.success) {
    const issues = result.error.issues;
    const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : "";
    throw invalidManifest(
      issues.slice(0, 3).map(describeIssue).join("; ") + more,
      tomlKeyPath(issues[0].path),
    );
  }
  const raw = result.data;
  const blobs: ImageManifest["blobs"] = {};
  for (const [label, blob] of Object.entries(raw[K.blobs] ?? {})) {
    blobs[label] = { sha256: blob[K.sha256], size: blob[K.size], attrs: { ...blob[K.attrs] } };
  }
  return {
    label: raw[K.label],
    revision: raw[K.revision],
    description: raw[K.description],
    attrs: { ...raw[K.attrs] },
    blobs,
    extensions: raw.manifest_extensions,
  };
}

// ---- writing ------------------------------------------------------------------------------

/** A TOML basic string; escapes every control character, which TOML forbids raw. */
function tomlString(value: string): string {
  const escaped = value.replace(
    // deno-lint-ignore no-control-regex -- matching control characters is the point
    /[\\"\u0000-\u001f\u007f]/g,
    (char) =>
      char === "\\" || char === '"'
        ? `\\${char}`
        : `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  return `"${escaped}"`;
}

/** A table of strings; written even when empty, because Treadmill's reader requires it. */
function stringTable(header: readonly string[], map: Record<string, string>): string[] {
  const entries = Object.entries(map);
  return [
    "",
    `[${tomlKeyPath(header)}]`,
    ...entries.map(([key, value]) => `${tomlString(key)} = ${tomlString(value)}`),
  ];
}

/**
 * Writes `m` in Treadmill's layout. Treadmill's reader (serde) requires the image's and every
 * blob's `attrs` table and the `blobs` table, so they are written even when empty. The output
 * is parsed back before it is returned, so the writer can never publish a manifest that
 * readers would refuse.
 */
export function writeManifest(m: ImageManifest): Uint8Array {
  const lines = [
    "manifest_version = 0",
    `manifest_extensions = [${m.extensions.map(tomlString).join(", ")}]`,
    "",
    `${tomlString(K.label)} = ${tomlString(m.label)}`,
    `${tomlString(K.revision)} = ${m.revision}`,
    `${tomlString(K.description)} = ${tomlString(m.description)}`,
    ...stringTable([K.attrs], m.attrs),
  ];
  if (Object.keys(m.blobs).length === 0) lines.push("", `[${tomlKeyPath([K.blobs])}]`);
  for (const [label, blob] of Object.entries(m.blobs)) {
    lines.push(
      "",
      `[${tomlKeyPath([K.blobs, label])}]`,
      `${tomlString(K.sha256)} = ${tomlString(blob.sha256)}`,
      `${tomlString(K.size)} = ${blob.size}`,
      ...stringTable([K.blobs, label, K.attrs], blob.attrs),
    );
  }
  const bytes = new TextEncoder().encode(lines.join("\n") + "\n");
  parseManifest(bytes);
  return bytes;
}

/** The image id: SHA-256 of the manifest's exact bytes. */
export function imageIdOf(bytes: Uint8Array): string {
  return sha256Bytes(bytes);
}

/** Bytes of the distinct blobs an image lists: a blob under two labels is stored once. */
export function manifestTotalSize(m: ImageManifest): number {
  const sizes = new Map(Object.values(m.blobs).map((blob) => [blob.sha256, blob.size]));
  return [...sizes.values()].reduce((total, size) => total + size, 0);
}

// ---- image kinds --------------------------------------------------------------------------

export const QEMU_LAYERED = "org.tockos.treadmill.image.qemu_layered_v0";
export const NBD_QCOW2_LAYERED = "org.tockos.treadmill.image.nbd_qcow2_layered_v0";
/** tml's attribute namespace for direct kernel boot; see kernelBootOf. */
export const KERNEL_BOOT = "dev.tml.manifest-ext.kernel_boot";

/** A blob an image names, with its content address. */
export interface BlobRef {
  label: string;
  sha256: string;
  size: number;
}

/** One qcow2 layer; `lower` names its backing layer, absent for the base. */
export interface QcowLayer extends BlobRef {
  virtualSize: number;
  lower?: string;
}

function blobRef(m: ImageManifest, label: string, field: string): BlobRef {
  const blob = m.blobs[label];
  if (blob === undefined) {
    throw invalidKey(field, `names blob "${label}", which the manifest does not list`);
  }
  return { label, sha256: blob.sha256, size: blob.size };
}

function imageAttrField(name: string): string {
  return tomlKeyPath([K.attrs, name]);
}

function blobAttrField(label: string, name: string): string {
  return tomlKeyPath([K.blobs, label, K.attrs, name]);
}

function requiredImageAttr(m: ImageManifest, name: string): string {
  const value = m.attrs[name];
  if (value === undefined) throw invalidKey(imageAttrField(name), "required");
  return value;
}

/** Follows `<ns>.lower` from `head` down to the base; returns the chain base first. */
function qcowChain(m: ImageManifest, ns: string, head: string, headField: string): QcowLayer[] {
  const chain: QcowLayer[] = [];
  const seen = new Set<string>();
  let label: string | undefined = head;
  let field = headField;
  while (label !== undefined) {
    if (seen.has(label)) {
      throw invalidKey(field, `layer "${label}" is already in the chain (a cycle)`);
    }
    seen.add(label);
    const ref = blobRef(m, label, field);
    const attrs: Record<string, string> = m.blobs[label].attrs;
    const sizeField = blobAttrField(label, `${ns}.blob-virtual-size`);
    const virtualSize = attrs[`${ns}.blob-virtual-size`];
    if (virtualSize === undefined || !/^\d{1,16}$/.test(virtualSize)) {
      throw invalidKey(
        sizeField,
        `expected a size in bytes, got ${
          virtualSize === undefined ? "nothing" : `"${virtualSize}"`
        }`,
      );
    }
    const lower: string | undefined = attrs[`${ns}.lower`];
    chain.push({
      ...ref,
      virtualSize: Number(virtualSize),
      ...(lower === undefined ? {} : { lower }),
    });
    field = blobAttrField(label, `${ns}.lower`);
    label = lower;
  }
  return chain.reverse();
}

/** What kind of disk image a manifest describes, judged by its head attribute. */
export function imageKindOf(m: ImageManifest): "qemu" | "nbd" | undefined {
  if (m.attrs[`${QEMU_LAYERED}.head`] !== undefined) return "qemu";
  if (m.attrs[`${NBD_QCOW2_LAYERED}.head`] !== undefined) return "nbd";
  return undefined;
}

/** The qcow2 layers of a QEMU image, base first; validates head, lowers and acyclicity. */
export function qemuLayerChain(m: ImageManifest): QcowLayer[] {
  const headAttr = `${QEMU_LAYERED}.head`;
  const head = requiredImageAttr(m, headAttr);
  return qcowChain(m, QEMU_LAYERED, head, imageAttrField(headAttr));
}

/** A netboot image: the `<L>-boot` tar and the qcow2 root chain from `<L>-root`, base first. */
export function nbdLayers(m: ImageManifest): { boot: BlobRef; root: QcowLayer[] } {
  const headAttr = `${NBD_QCOW2_LAYERED}.head`;
  const head = requiredImageAttr(m, headAttr);
  const field = imageAttrField(headAttr);
  return {
    boot: blobRef(m, `${head}-boot`, field),
    root: qcowChain(m, NBD_QCOW2_LAYERED, `${head}-root`, field),
  };
}

/**
 * tml's direct-kernel-boot attributes, image attrs in the KERNEL_BOOT namespace:
 *
 *   "dev.tml.manifest-ext.kernel_boot.kernel"  = "<blob label>"   the kernel (required)
 *   "dev.tml.manifest-ext.kernel_boot.initrd"  = "<blob label>"   an initramfs (optional)
 *   "dev.tml.manifest-ext.kernel_boot.cmdline" = "console=ttyS0"  the command line (optional)
 *
 * The command line is the attr's string itself, not a blob: it is short, and keeping it in the
 * manifest makes it visible in `tml image show` and part of the image id. These are plain
 * attrs, so Treadmill (which ignores unknown attrs) still reads such a manifest. Undefined when
 * the image has none of them; an initrd or cmdline without a kernel is an error.
 */
export function kernelBootOf(
  m: ImageManifest,
): { kernel: BlobRef; initrd?: BlobRef; cmdline?: string } | undefined {
  const kernel = m.attrs[`${KERNEL_BOOT}.kernel`];
  const initrd = m.attrs[`${KERNEL_BOOT}.initrd`];
  const cmdline = m.attrs[`${KERNEL_BOOT}.cmdline`];
  if (kernel === undefined) {
    if (initrd !== undefined || cmdline !== undefined) {
      throw invalidKey(imageAttrField(`${KERNEL_BOOT}.kernel`), "required");
    }
    return undefined;
  }
  return {
    kernel: blobRef(m, kernel, imageAttrField(`${KERNEL_BOOT}.kernel`)),
    ...(initrd === undefined
      ? {}
      : { initrd: blobRef(m, initrd, imageAttrField(`${KERNEL_BOOT}.initrd`)) }),
    ...(cmdline === undefined ? {} : { cmdline }),
  };
}
