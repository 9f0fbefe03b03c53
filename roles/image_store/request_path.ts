/**
 * Maps a request path under `/blobs/` or `/images/` to the store entry it names, refusing
 * everything else with a 400 that says why. Two spellings are accepted for each entry: the
 * layout path (`/blobs/ab/cd/ef/<sha256>`, what `all.txt` lists and mirrors fetch) and the short
 * one (`/blobs/<sha256>`, what uploads use). The path is checked in its raw, still-encoded form,
 * so `%2F` can never smuggle in a separator and no decoded text reaches the filesystem: the only
 * file paths built from a request come from `lib/store/layout.ts` after the digest is validated.
 */
import { parseStorePath } from "../../lib/store/layout.ts";
import { StoreHttpError } from "./http_errors.ts";

export type StoreEntryKind = "blob" | "image";

export interface StoreEntry {
  kind: StoreEntryKind;
  digest: string;
}

const DIGEST = /^[0-9a-f]{64}$/;

/** The entry a raw path such as `/blobs/ab/cd/ef/<d>` names; throws a 400 otherwise. */
export function storeEntryOf(rawPath: string): StoreEntry {
  const kind: StoreEntryKind = rawPath.startsWith("/images/") ? "image" : "blob";
  const what = kind === "blob" ? "blob" : "image";
  if (rawPath.includes("%")) {
    throw invalidPath(rawPath, `encoded characters are not allowed in ${what} paths`);
  }
  const segments = rawPath.split("/").slice(2);
  if (segments.some((segment) => segment === "." || segment === ".." || segment === "")) {
    throw invalidPath(rawPath, 'empty, "." and ".." segments are not allowed');
  }
  if (segments.length === 1) {
    const digest = segments[0];
    if (!DIGEST.test(digest)) throw invalidDigest(rawPath, kind);
    return { kind, digest };
  }
  if (segments.length === 4) {
    if (!DIGEST.test(segments[3])) throw invalidDigest(rawPath, kind);
    const parsed = parseStorePath(rawPath.slice(1));
    if (parsed === undefined || parsed.kind !== kind) {
      throw invalidPath(rawPath, "the folders must be the first three bytes of the digest");
    }
    return { kind, digest: parsed.digest };
  }
  throw invalidPath(
    rawPath,
    `expected /${kind}s/ab/cd/ef/<sha256> or /${kind}s/<sha256>`,
  );
}

function invalidPath(rawPath: string, detail: string): StoreHttpError {
  return new StoreHttpError(400, "invalid_path", `Invalid path "${rawPath}": ${detail}`, {
    field: "path",
  });
}

function invalidDigest(rawPath: string, kind: StoreEntryKind): StoreHttpError {
  const field = kind === "blob" ? "sha256" : "image_id";
  return new StoreHttpError(
    400,
    "invalid_digest",
    `Invalid path "${rawPath}": ${field} must be 64 lowercase hex digits`,
    { field },
  );
}
