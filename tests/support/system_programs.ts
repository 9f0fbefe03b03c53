/** The system programs the test suite drives, with the Debian packages that provide them. */
import type { SystemProgram } from "../../lib/system_packages.ts";

export const POSTGRES_SERVER: SystemProgram = {
  command: "initdb",
  debianPackage: "postgresql",
  searchDirs: ["/usr/lib/postgresql/*/bin"],
};

export const TEST_SYSTEM_PROGRAMS: SystemProgram[] = [POSTGRES_SERVER];
