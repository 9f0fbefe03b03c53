/**
 * Finds the system programs tml drives (PostgreSQL's server, QEMU, nginx) and, when one is missing,
 * installs its Debian package if running as root, or says exactly what to install otherwise.
 */
import { TmlError } from "./errors.ts";

export interface SystemProgram {
  /** Program name, e.g. `initdb`. */
  command: string;
  /** Debian package that provides it, e.g. `postgresql`. */
  debianPackage: string;
  /** Extra directories (globs allowed at one level, `*`) searched after PATH. */
  searchDirs?: string[];
}

export class MissingProgramError extends TmlError {
  constructor(message: string) {
    super("missing_program", message, { status: 500 });
  }
}

/** Returns the absolute path of a program, or undefined when it is not installed. */
export async function findProgram(program: SystemProgram): Promise<string | undefined> {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((dir) => dir !== "");
  for (const pattern of program.searchDirs ?? []) dirs.push(...await expandGlobDir(pattern));
  for (const dir of dirs) {
    const candidate = `${dir}/${program.command}`;
    try {
      const info = await Deno.stat(candidate);
      if (info.isFile && info.mode !== null && (info.mode & 0o111) !== 0) return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

/** Finds a program, installing its Debian package first when missing and running as root. */
export async function requireProgram(program: SystemProgram): Promise<string> {
  const found = await findProgram(program);
  if (found !== undefined) return found;
  if (Deno.uid() !== 0) {
    throw new MissingProgramError(
      `Cannot find "${program.command}": install the Debian package "${program.debianPackage}" ` +
        `(sudo apt-get install -y ${program.debianPackage})`,
    );
  }
  await installDebianPackages([program.debianPackage]);
  const installed = await findProgram(program);
  if (installed === undefined) {
    throw new MissingProgramError(
      `Cannot find "${program.command}" after installing "${program.debianPackage}"`,
    );
  }
  return installed;
}

const APT_ENV = { DEBIAN_FRONTEND: "noninteractive" };
let aptUpdated = false;

/**
 * Refreshes apt's package lists once per process. A fresh machine (or container) has none, and
 * then neither `apt-get install` nor `apt-cache show` nor `apt-get download` finds anything.
 */
export async function updateDebianPackageLists(): Promise<void> {
  if (aptUpdated) return;
  await run(["apt-get", "update", "-qq"], APT_ENV);
  aptUpdated = true;
}

/** Installs Debian packages with apt-get, as root, without prompts. */
export async function installDebianPackages(packages: string[]): Promise<void> {
  console.error(`tml: installing Debian packages: ${packages.join(" ")}`);
  await updateDebianPackageLists();
  await run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...packages], APT_ENV);
}

async function run(argv: string[], env: Record<string, string>): Promise<void> {
  const result = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!result.success) {
    throw new MissingProgramError(`Cannot run "${argv.join(" ")}": exit code ${result.code}`);
  }
}

async function expandGlobDir(pattern: string): Promise<string[]> {
  const star = pattern.indexOf("*");
  if (star < 0) return [pattern];
  const parent = pattern.slice(0, pattern.lastIndexOf("/", star));
  const rest = pattern.slice(pattern.indexOf("/", star));
  const prefix = pattern.slice(parent.length + 1, star);
  const out: string[] = [];
  try {
    for await (const entry of Deno.readDir(parent)) {
      if (entry.isDirectory && entry.name.startsWith(prefix)) {
        out.push(`${parent}/${entry.name}${rest}`);
      }
    }
  } catch {
    return [];
  }
  return out.sort().reverse();
}
