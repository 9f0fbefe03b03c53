/**
 * The test guest recipe: a small VM image built from Debian packages only, which boots the
 * Debian cloud kernel directly (tml's kernel-boot manifest extension) into a busybox initramfs
 * that runs the real `tml puppet`. Deno and the bundled tml live on a one-layer qcow2 disk
 * (a 95 MB initramfs would be slow to unpack under software emulation), with an SSH server
 * (dropbear, `disk.ts`) that the guest starts when it has a network card: users log in as `tml`
 * with the job's keys, which the puppet writes to /home/tml/.ssh/authorized_keys.
 *
 * The result is a store-layout image cached under `.cache/test-guest/<key>`, where the key
 * hashes every input (this recipe, the package versions, the deno binary, the tml bundle), so
 * it is built once per machine and again only when an input changes.
 *
 * `buildGuest` is the part every guest recipe shares (the inputs, the cache, the kernel,
 * initramfs and tml disk, the store); a recipe only lays those parts out as an image, as
 * images/uefi_guest does for a UEFI disk.
 *
 * Usage: deno run -A images/test_guest/build.ts [OUT_STORE_DIR]
 *   prints the image id; with OUT_STORE_DIR, also copies the image into that directory store.
 */
import { join } from "node:path";
import {
  BASE_EXTENSION,
  type BlobStore,
  imageIdOf,
  type ImageManifest,
  KERNEL_BOOT,
  openDirectoryStore,
  QEMU_LAYERED,
  sha256Bytes,
  sha256File,
  writeManifest,
} from "../../lib/store/mod.ts";
import { PUPPET_FW_CFG_SECRET, PUPPET_VIRTIO_PORT_NAME } from "../../lib/protocol/puppet.ts";
import { requireProgram, updateDebianPackageLists } from "../../lib/system_packages.ts";
import { QEMU_IMG } from "../../lib/qemu_programs.ts";
import { run, TestGuestError } from "./command.ts";
import { type CpioEntry, writeCpioGz } from "./cpio.ts";
import { buildDisk, SSH_SERVER_PACKAGES } from "./disk.ts";

export { run, TestGuestError };

const REPO = new URL("../../", import.meta.url).pathname;
/** This recipe's files, which every guest recipe builds on: hashed into each cache key. */
const COMMON_RECIPE_FILES = ["build.ts", "command.ts", "cpio.ts", "disk.ts", "init.sh", "udhcpc.sh"]
  .map((name) => new URL(name, import.meta.url).pathname);
export const DEFAULT_CACHE_ROOT = join(REPO, ".cache/test-guest");

/** Modules the guest needs, by name; their dependencies are loaded first. */
const WANTED_MODULES = [
  "virtio_pci",
  "virtio_blk",
  "virtio_console",
  "virtio_net",
  "qemu_fw_cfg",
  "evdev",
  "button",
];
export const KERNEL_CMDLINE = "console=ttyS0 panic=-1 quiet";
/** The user `tml job ssh` logs in as (the puppet's default `--ssh-user`). */
const TML_USER = { uid: 1000, gid: 1000 };

export interface TestGuest {
  imageId: string;
  /** The directory store holding the image. */
  storeDir: string;
  store: BlobStore;
}

export interface BuildOptions {
  cacheRoot?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** What every guest image is made of, built in the build's scratch directory. */
export interface GuestParts {
  /** The Debian packages of the recipe, unpacked (the kernel, busybox-static, dropbear, ...). */
  root: string;
  kernel: string;
  /** The initramfs, whose /init mounts the tml disk and runs the puppet. */
  initrd: string;
  /** The tml disk: a raw ext4 filesystem holding deno, the tml bundle and deno's caches. */
  disk: string;
}

/** One image as a recipe lays out the parts: manifest label and attrs, and the blobs' files. */
export interface GuestLayout {
  label: string;
  attrs: Record<string, string>;
  blobs: { label: string; file: string; attrs: Record<string, string> }[];
}

/** A guest recipe: what it adds to the common inputs, and how it makes an image of the parts. */
export interface GuestRecipe {
  /** Prefix of progress lines. */
  name: string;
  cacheRoot: string;
  /** Its own source files, hashed into the cache key with this module's. */
  files: string[];
  /** Debian packages unpacked into `GuestParts.root` besides the common ones (kernel, ...). */
  packages: string[];
  /** The block device the guest's init mounts the tml disk from. */
  diskDevice: string;
  layout(parts: GuestParts, scratch: string): Promise<GuestLayout>;
}

const TEST_GUEST: GuestRecipe = {
  name: "test-guest",
  cacheRoot: DEFAULT_CACHE_ROOT,
  files: [],
  packages: [],
  diskDevice: "/dev/vda",
  async layout(parts, scratch): Promise<GuestLayout> {
    const root = join(scratch, "disk.qcow2");
    const virtualSize = await convertToQcow2(parts.disk, root);
    return {
      label: "tml test guest",
      attrs: {
        [`${QEMU_LAYERED}.head`]: "root",
        [`${KERNEL_BOOT}.kernel`]: "kernel",
        [`${KERNEL_BOOT}.initrd`]: "initrd",
        [`${KERNEL_BOOT}.cmdline`]: KERNEL_CMDLINE,
      },
      blobs: [
        { label: "kernel", file: parts.kernel, attrs: {} },
        { label: "initrd", file: parts.initrd, attrs: {} },
        {
          label: "root",
          file: root,
          attrs: { [`${QEMU_LAYERED}.blob-virtual-size`]: String(virtualSize) },
        },
      ],
    };
  },
};

/** Builds the test guest, or returns the cached build of the same inputs. */
export function buildTestGuest(options: BuildOptions = {}): Promise<TestGuest> {
  return buildGuest(TEST_GUEST, options);
}

/**
 * Builds a guest recipe's image into `<cacheRoot>/<key>`, or returns the cached build of the
 * same inputs. The key hashes the recipe's files and this module's, the package versions, the
 * deno binary and the tml bundle.
 */
export async function buildGuest(
  recipe: GuestRecipe,
  options: BuildOptions = {},
): Promise<TestGuest> {
  const cacheRoot = options.cacheRoot ?? recipe.cacheRoot;
  const log = options.log ?? ((line: string) => console.error(`${recipe.name}: ${line}`));
  await Deno.mkdir(cacheRoot, { recursive: true });
  const scratch = await Deno.makeTempDir({ dir: cacheRoot, prefix: "build-" });
  try {
    const bundle = join(scratch, "tml.js");
    await run(Deno.execPath(), ["bundle", "--quiet", "-o", bundle, "main.ts"], { cwd: REPO });
    const packages: Record<string, string> = {};
    const common = [await kernelPackageName(), "busybox-static", ...SSH_SERVER_PACKAGES];
    for (const name of [...common, ...recipe.packages]) {
      packages[name] = await packageVersion(name);
    }
    const key = sha256Bytes(JSON.stringify({
      recipe: await Promise.all(
        [...COMMON_RECIPE_FILES, ...recipe.files].map((file) => Deno.readTextFile(file)),
      ),
      packages,
      deno: [Deno.version.deno, (await Deno.stat(Deno.execPath())).size],
      bundle: await sha256File(bundle),
    })).slice(0, 16);
    const storeDir = join(cacheRoot, key);
    const cachedId = await Deno.readTextFile(join(storeDir, "image-id")).catch(() => undefined);
    if (cachedId !== undefined) {
      return { imageId: cachedId.trim(), storeDir, store: openDirectoryStore(storeDir) };
    }

    log(`building ${storeDir} (once per machine)`);
    const debs = join(cacheRoot, "debs");
    const root = join(scratch, "root");
    for (const [name, version] of Object.entries(packages)) {
      const deb = await downloadPackage(debs, name, version);
      await run("dpkg-deb", ["-x", deb, root]);
    }
    const kernel = await onlyFile(join(root, "boot"), /^vmlinuz-/);
    const diskTree = join(scratch, "disk");
    const initrd = join(scratch, "initrd.gz");
    await Deno.writeFile(
      initrd,
      await writeCpioGz(await initramfsEntries(root, diskTree, recipe.diskDevice)),
    );
    const disk = await buildDisk(diskTree, scratch, bundle, root);
    const layout = await recipe.layout({ root, kernel, initrd, disk }, scratch);
    log("disk and initramfs built; storing the image");

    const stage = join(scratch, "store");
    const store = openDirectoryStore(stage);
    const blobs: ImageManifest["blobs"] = {};
    for (const { label, file, attrs } of layout.blobs) {
      const sha256 = await sha256File(file);
      const { size } = await store.put(sha256, (await Deno.open(file)).readable);
      blobs[label] = { sha256, size, attrs };
    }
    const manifest = writeManifest({
      label: layout.label,
      revision: 0,
      description: `Debian ${
        Object.entries(packages).map(([name, version]) => `${name} ${version}`).join(", ")
      }, deno ${Deno.version.deno} and the tml puppet`,
      attrs: layout.attrs,
      blobs,
      extensions: [BASE_EXTENSION],
    });
    const imageId = await store.putManifest(manifest);
    if (imageId !== imageIdOf(manifest)) throw new TestGuestError("Cannot store the manifest");
    await Deno.writeTextFile(join(stage, "image-id"), imageId + "\n");
    await Deno.remove(storeDir, { recursive: true }).catch(() => {});
    await Deno.rename(stage, storeDir);
    log(`built image ${imageId}`);
    await pruneOldBuilds(cacheRoot, log);
    return { imageId, storeDir, store: openDirectoryStore(storeDir) };
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
}

/** Builds kept in a cache root: each is ~100 MB, and every change to tml's code makes one. */
const KEPT_BUILDS = 3;

/**
 * Removes all but the newest KEPT_BUILDS builds, so a developer's cache does not grow by a
 * build per edit; a few are kept for test runs of other checkouts still using them.
 */
async function pruneOldBuilds(cacheRoot: string, log: (line: string) => void): Promise<void> {
  const builds: Array<{ dir: string; mtime: number }> = [];
  for await (const entry of Deno.readDir(cacheRoot)) {
    if (!entry.isDirectory || !/^[0-9a-f]{16}$/.test(entry.name)) continue;
    const dir = join(cacheRoot, entry.name);
    builds.push({ dir, mtime: (await Deno.stat(dir)).mtime?.getTime() ?? 0 });
  }
  builds.sort((a, b) => b.mtime - a.mtime);
  for (const { dir } of builds.slice(KEPT_BUILDS)) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    log(`removed the old build ${dir}`);
  }
}

/** Copies the image into another directory store (a site cache, a test's store). */
export async function copyImage(guest: TestGuest, target: BlobStore): Promise<void> {
  const manifest = await guest.store.readManifestBytes(guest.imageId);
  if (manifest === undefined) throw new TestGuestError(`Cannot find image "${guest.imageId}"`);
  const parsed = (await guest.store.readManifest(guest.imageId))!;
  for (const blob of Object.values(parsed.blobs)) {
    await target.put(blob.sha256, await guest.store.open(blob.sha256), blob.size);
  }
  await target.putManifest(manifest);
}

async function aptField(name: string, field: string): Promise<string> {
  const show = () => run("apt-cache", ["show", "--no-all-versions", name]);
  const text = await show().catch(async (error) => {
    // A machine that never ran `apt-get update` knows no package at all.
    if (Deno.uid() !== 0) throw error;
    await updateDebianPackageLists();
    return await show();
  });
  const match = new RegExp(`^${field}: (.+)$`, "m").exec(text);
  if (match === null) {
    throw new TestGuestError(`Cannot find the ${field} of Debian package "${name}"`);
  }
  return match[1].trim();
}

/** `linux-image-cloud-amd64` depends on the versioned package that holds the kernel. */
async function kernelPackageName(): Promise<string> {
  const depends = await aptField("linux-image-cloud-amd64", "Depends");
  const match = /linux-image-[0-9][^ ,]*-cloud-amd64/.exec(depends);
  if (match === null) {
    throw new TestGuestError(`Cannot find the cloud kernel package in "${depends}"`);
  }
  return match[0];
}

function packageVersion(name: string): Promise<string> {
  return aptField(name, "Version");
}

async function downloadPackage(dir: string, name: string, version: string): Promise<string> {
  const file = join(dir, `${name}_${version.replaceAll(":", "%3a")}_amd64.deb`);
  if (await Deno.stat(file).then(() => true, () => false)) return file;
  await Deno.mkdir(dir, { recursive: true });
  await run("apt-get", ["download", `${name}=${version}`], { cwd: dir });
  await Deno.stat(file).catch((error) => {
    throw new TestGuestError(`Cannot find "${file}" after apt-get download`, error);
  });
  return file;
}

async function onlyFile(dir: string, pattern: RegExp): Promise<string> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (pattern.test(entry.name)) found.push(join(dir, entry.name));
  }
  if (found.length !== 1) {
    throw new TestGuestError(`Cannot pick one file matching ${pattern} in "${dir}": ${found}`);
  }
  return found[0];
}

/** All `.ko` files under `dir`, by module name. */
async function moduleFiles(dir: string, into = new Map<string, string>()) {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) await moduleFiles(path, into);
    else if (entry.name.endsWith(".ko")) into.set(entry.name.slice(0, -3), path);
  }
  return into;
}

/** The `depends=` field of a module's .modinfo section. */
function moduleDepends(bytes: Uint8Array): string[] {
  const text = new TextDecoder("latin1").decode(bytes);
  const at = text.indexOf("\0depends=");
  if (at < 0) return [];
  const value = text.slice(at + 9, text.indexOf("\0", at + 9));
  return value === "" ? [] : value.split(",");
}

/** The modules to insmod, dependencies first; built-in ones are skipped. */
async function moduleLoadOrder(modulesDir: string): Promise<Map<string, Uint8Array>> {
  const files = await moduleFiles(modulesDir);
  const order = new Map<string, Uint8Array>();
  const visit = async (name: string) => {
    if (order.has(name)) return;
    const file = files.get(name) ?? files.get(name.replaceAll("_", "-"));
    if (file === undefined) {
      const builtin = await Deno.readTextFile(join(modulesDir, "modules.builtin"));
      if (new RegExp(`/${name}\\.ko$`, "m").test(builtin)) return;
      throw new TestGuestError(`Cannot find kernel module "${name}" in "${modulesDir}"`);
    }
    const bytes = await Deno.readFile(file);
    for (const dependency of moduleDepends(bytes)) await visit(dependency);
    order.set(name, bytes);
  };
  for (const name of WANTED_MODULES) await visit(name);
  return order;
}

/**
 * The initramfs; its init mounts the tml disk from `diskDevice` at `diskMount`, where build.ts
 * built its tree.
 */
async function initramfsEntries(
  root: string,
  diskMount: string,
  diskDevice: string,
): Promise<CpioEntry[]> {
  const modulesDir = await onlyFile(join(root, "lib/modules"), /^\d/);
  const modules = await moduleLoadOrder(modulesDir);
  const init = (await Deno.readTextFile(new URL("init.sh", import.meta.url).pathname))
    .replaceAll("@PORT_NAME@", PUPPET_VIRTIO_PORT_NAME)
    .replaceAll("@SECRET_NAME@", PUPPET_FW_CFG_SECRET)
    .replaceAll("@MODULES@", [...modules.keys()].join(" "))
    .replaceAll("@DISK_MOUNT@", diskMount)
    .replaceAll("@DISK_DEVICE@", diskDevice);
  const text = (value: string) => new TextEncoder().encode(value);
  return [
    ...["bin", "dev", "proc", "sys", "run", "tmp", "mnt", "lib", "lib/modules", "etc"].map(
      (path) => ({ kind: "dir" as const, path }),
    ),
    { kind: "dir", path: "root", mode: 0o700 },
    { kind: "dir", path: "home" },
    // The SSH user's home is theirs; the puppet makes ~/.ssh in it, owned by them too.
    { kind: "dir", path: "home/tml", owner: TML_USER },
    { kind: "char", path: "dev/console", major: 5, minor: 1 },
    {
      kind: "file",
      path: "bin/busybox",
      data: await Deno.readFile(join(root, "bin/busybox")),
      mode: 0o755,
    },
    { kind: "file", path: "init", data: text(init), mode: 0o755 },
    {
      kind: "file",
      path: "etc/passwd",
      data: text(
        `root:x:0:0:root:/root:/bin/sh\n` +
          `tml:x:${TML_USER.uid}:${TML_USER.gid}:tml:/home/tml:/bin/sh\n`,
      ),
    },
    { kind: "file", path: "etc/group", data: text(`root:x:0:\ntml:x:${TML_USER.gid}:\n`) },
    {
      kind: "file",
      path: "etc/udhcpc.sh",
      data: await Deno.readFile(new URL("udhcpc.sh", import.meta.url).pathname),
      mode: 0o755,
    },
    // dropbear -R writes the host keys it makes at boot here: a fresh pair per job, in memory.
    { kind: "symlink", path: "etc/dropbear", target: "/run/dropbear" },
    ...[...modules].map(([name, data]) => ({
      kind: "file" as const,
      path: `lib/modules/${name}.ko`,
      data,
    })),
  ];
}

/** Converts a raw disk image to a compressed qcow2 layer; returns its virtual size. */
export async function convertToQcow2(raw: string, qcow2: string): Promise<number> {
  const qemuImg = await requireProgram(QEMU_IMG);
  await run(qemuImg, ["convert", "-c", "-f", "raw", "-O", "qcow2", raw, qcow2]);
  return (await Deno.stat(raw)).size;
}

if (import.meta.main) {
  const started = performance.now();
  const guest = await buildTestGuest();
  if (Deno.args[0] !== undefined) await copyImage(guest, openDirectoryStore(Deno.args[0]));
  console.error(
    `test-guest: image ready in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  console.log(guest.imageId);
}
