/** The system programs the test suite drives, with the Debian packages that provide them. */
import type { SystemProgram } from "../../lib/system_packages.ts";

export const POSTGRES_SERVER: SystemProgram = {
  command: "initdb",
  debianPackage: "postgresql",
  searchDirs: ["/usr/lib/postgresql/*/bin"],
};

/** `tml job enqueue` makes tml's own SSH key with it (roles/client/ssh_keys.ts). */
export const SSH_KEYGEN: SystemProgram = { command: "ssh-keygen", debianPackage: "openssh-client" };

export const TEST_SYSTEM_PROGRAMS: SystemProgram[] = [POSTGRES_SERVER, SSH_KEYGEN];
