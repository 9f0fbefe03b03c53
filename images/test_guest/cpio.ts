/**
 * Writes a gzipped cpio archive in the "newc" format, the one the Linux kernel unpacks as an
 * initramfs. It is written here rather than with cpio(1) so that the archive needs no root (it
 * holds a /dev/console node and files of other owners) and is byte-identical from run to run
 * (fixed times; every entry root's unless it names its owner).
 */

export type CpioEntry =
  | { kind: "dir"; path: string; mode?: number; owner?: { uid: number; gid: number } }
  | { kind: "file"; path: string; data: Uint8Array; mode?: number }
  | { kind: "symlink"; path: string; target: string }
  | { kind: "char"; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(value: number): string {
  return value.toString(16).padStart(8, "0");
}

function pad4(length: number): Uint8Array {
  return new Uint8Array((4 - (length % 4)) % 4);
}

function record(
  ino: number,
  name: string,
  mode: number,
  data: Uint8Array,
  rdev: [number, number] = [0, 0],
  owner = { uid: 0, gid: 0 },
): Uint8Array[] {
  const nameBytes = new TextEncoder().encode(name + "\0");
  const header = "070701" + [
    ino,
    mode,
    owner.uid,
    owner.gid,
    mode & S_IFDIR ? 2 : 1, // nlink
    0, // mtime
    data.length,
    0, // devmajor
    0, // devminor
    rdev[0],
    rdev[1],
    nameBytes.length,
    0, // check
  ].map(hex8).join("");
  const head = new TextEncoder().encode(header);
  return [head, nameBytes, pad4(head.length + nameBytes.length), data, pad4(data.length)];
}

/** The archive's bytes, gzip-compressed. Paths are relative (`bin/busybox`), parents first. */
export async function writeCpioGz(entries: CpioEntry[]): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  entries.forEach((entry, index) => {
    const ino = index + 1;
    switch (entry.kind) {
      case "dir":
        parts.push(
          ...record(
            ino,
            entry.path,
            S_IFDIR | (entry.mode ?? 0o755),
            new Uint8Array(),
            undefined,
            entry.owner,
          ),
        );
        break;
      case "file":
        parts.push(...record(ino, entry.path, S_IFREG | (entry.mode ?? 0o644), entry.data));
        break;
      case "symlink":
        parts.push(
          ...record(ino, entry.path, S_IFLNK | 0o777, new TextEncoder().encode(entry.target)),
        );
        break;
      case "char":
        parts.push(
          ...record(ino, entry.path, S_IFCHR | (entry.mode ?? 0o600), new Uint8Array(), [
            entry.major,
            entry.minor,
          ]),
        );
        break;
    }
  });
  parts.push(...record(0, "TRAILER!!!", 0, new Uint8Array()));
  const stream = new Blob(parts as BlobPart[]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
