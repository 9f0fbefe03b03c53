/** The system programs the test suite drives, with the Debian packages that provide them. */
import { QEMU_IMG, QEMU_SYSTEM } from "../../lib/qemu_programs.ts";
import type { SystemProgram } from "../../lib/system_packages.ts";

export const POSTGRES_SERVER: SystemProgram = {
  command: "initdb",
  debianPackage: "postgresql",
  searchDirs: ["/usr/lib/postgresql/*/bin"],
};

export const WGET: SystemProgram = { command: "wget", debianPackage: "wget" };

/** `tml job enqueue` makes tml's own SSH key with it (roles/client/ssh_keys.ts). */
export const SSH_KEYGEN: SystemProgram = { command: "ssh-keygen", debianPackage: "openssh-client" };

/** The rendezvous tests run a real SSH server as a job host's service, and ssh into it. */
export const SSHD: SystemProgram = {
  command: "sshd",
  debianPackage: "openssh-server",
  searchDirs: ["/usr/sbin"],
};
export const SSH: SystemProgram = { command: "ssh", debianPackage: "openssh-client" };
/** The rendezvous TLS test makes a self-signed certificate with it. */
export const OPENSSL: SystemProgram = { command: "openssl", debianPackage: "openssl" };

/** The client's end-to-end test runs a CI script that parses `tml job enqueue` with it. */
export const JQ: SystemProgram = { command: "jq", debianPackage: "jq" };

export const TEST_SYSTEM_PROGRAMS: SystemProgram[] = [
  POSTGRES_SERVER,
  WGET,
  QEMU_SYSTEM,
  QEMU_IMG,
  SSH_KEYGEN,
  JQ,
  SSHD,
  SSH,
  OPENSSL,
];
