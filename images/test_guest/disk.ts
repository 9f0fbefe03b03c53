/**
 * The tml disk every guest mounts: a raw ext4 filesystem holding deno and the tml bundle (with
 * deno's caches warmed for it), the SSH server that `tml job ssh` reaches (Debian's dropbear),
 * and the shared libraries of both. The guest's init links `/lib64` and
 * `/lib/x86_64-linux-gnu` to the disk's, so the programs run from it as they would on Debian:
 *
 *   opt/tml/deno, opt/tml/tml.js, opt/tml/deno-dir/   deno, the bundle, deno's caches
 *   opt/tml/dropbear                                  the SSH server
 *   lib/x86_64-linux-gnu/<soname>, lib64/ld-linux-*   their libraries and the loader
 */
import { dirname, join } from "node:path";
import { requireProgram } from "../../lib/system_packages.ts";
import { run, TestGuestError } from "./command.ts";

/**
 * The Debian packages of the SSH server: dropbear and the libraries it links that are not
 * deno's too (libc), listed by hand because `apt-get download` fetches no dependencies. A
 * library missing here fails the build, naming it.
 */
export const SSH_SERVER_PACKAGES = [
  "dropbear-bin",
  "libtomcrypt1",
  "libtommath1",
  "libgmp10",
  "zlib1g",
  "libcrypt1",
];
/** Where the unpacked packages keep their libraries. */
const PACKAGE_LIBRARY_DIRS = ["usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"];

/**
 * The shared libraries a dynamically linked program loads, from ldd: soname -> path. Those in
 * `libraryDirs` come first (the recipe's unpacked packages), the build machine's after them.
 */
async function sharedLibraries(
  program: string,
  libraryDirs: string[] = [],
): Promise<Map<string, string>> {
  const libraries = new Map<string, string>();
  const env = libraryDirs.length === 0 ? undefined : { LD_LIBRARY_PATH: libraryDirs.join(":") };
  for (const line of (await run("ldd", [program], { env })).split("\n")) {
    const missing = /^\s*(\S+) => not found/.exec(line);
    const linked = /^\s*(\S+) => (\/\S+)/.exec(line);
    const loader = /^\s*(\/\S+ld-linux\S*)/.exec(line);
    if (missing !== null) {
      throw new TestGuestError(
        `Cannot find library "${missing[1]}" of "${program}": add its Debian package to the recipe`,
      );
    }
    if (linked !== null) libraries.set(linked[1], linked[2]);
    else if (loader !== null) libraries.set("ld-linux-x86-64.so.2", loader[1]);
  }
  return libraries;
}

/**
 * Builds the disk from the tml bundle and the recipe's unpacked packages (`packages`, which
 * hold `SSH_SERVER_PACKAGES`). `tree` is where the guest mounts it too: deno keys its caches by
 * the module's path, so the caches made here by running the bundle once are the guest's. Its
 * size is a whole number of MiB. Returns the raw filesystem image's path.
 */
export async function buildDisk(
  tree: string,
  scratch: string,
  bundle: string,
  packages: string,
): Promise<string> {
  const deno = Deno.execPath();
  const dropbear = join(packages, "usr/sbin/dropbear");
  const files = new Map<string, string>([
    ["opt/tml/deno", deno],
    ["opt/tml/tml.js", bundle],
    ["opt/tml/dropbear", dropbear],
  ]);
  const libraries = new Map([
    ...await sharedLibraries(deno),
    ...await sharedLibraries(dropbear, PACKAGE_LIBRARY_DIRS.map((dir) => join(packages, dir))),
  ]);
  for (const [soname, path] of libraries) {
    files.set(
      soname.startsWith("ld-linux") ? `lib64/${soname}` : `lib/x86_64-linux-gnu/${soname}`,
      path,
    );
  }
  let bytes = 0;
  for (const [relative, source] of files) {
    await Deno.mkdir(dirname(join(tree, relative)), { recursive: true });
    // Copied, not linked: a library's path in the unpacked packages is often a symlink.
    await Deno.copyFile(source, join(tree, relative));
    bytes += (await Deno.stat(source)).size;
  }
  for (const program of ["opt/tml/deno", "opt/tml/dropbear"]) {
    await Deno.chmod(join(tree, program), 0o755);
  }
  await warmDenoCaches(join(tree, "opt/tml/deno-dir"), join(tree, "opt/tml/tml.js"));
  for await (const entry of Deno.readDir(join(tree, "opt/tml/deno-dir"))) {
    bytes += (await Deno.stat(join(tree, "opt/tml/deno-dir", entry.name))).size;
  }
  const mkfs = await requireProgram({
    command: "mkfs.ext4",
    debianPackage: "e2fsprogs",
    searchDirs: ["/usr/sbin", "/sbin"],
  });
  const raw = join(scratch, "disk.ext4");
  const virtualSize = Math.ceil((bytes * 1.15 + 16 * 1024 * 1024) / (1024 * 1024)) * 1024 * 1024;
  await run(mkfs, [
    "-F",
    "-q",
    "-L",
    "tml-guest",
    "-m",
    "0",
    "-O",
    "^has_journal",
    "-E",
    "root_owner=0:0",
    "-d",
    tree,
    raw,
    `${virtualSize / 1024}k`,
  ]);
  return raw;
}

/**
 * Runs the bundle once so that deno stores its dependency analysis and V8 code cache for it in
 * `denoDir`. Under software emulation that saves the guest ~3 s of a ~9 s boot (measured).
 */
async function warmDenoCaches(denoDir: string, bundle: string): Promise<void> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", bundle, "--version"],
    env: { DENO_DIR: denoDir, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdin: "null",
  }).output();
  if (!output.success) {
    throw new TestGuestError(
      `Cannot run the tml bundle: ${new TextDecoder().decode(output.stderr).trim()}`,
    );
  }
}
