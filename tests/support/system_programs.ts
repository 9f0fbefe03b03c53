/** The system programs the test suite drives, with the Debian packages that provide them. */
import type { SystemProgram } from "../../lib/system_packages.ts";

export const POSTGRES_SERVER: SystemProgram = {
  command: "initdb",
  debianPackage: "postgresql",
  searchDirs: ["/usr/lib/postgresql/*/bin"],
};

/** `tml job enqueue` makes tml's own SSH key with it (roles/client/ssh_keys.ts). */
export const SSH_KEYGEN: SystemProgram = { command: "ssh-keygen", debianPackage: "openssh-client" };

/** The client's end-to-end test runs a CI script that parses `tml job enqueue` with it. */
export const JQ: SystemProgram = { command: "jq", debianPackage: "jq" };

export const TEST_SYSTEM_PROGRAMS: SystemProgram[] = [POSTGRES_SERVER, SSH_KEYGEN, JQ];
