/** The QEMU programs tml drives, with the Debian packages that provide them. */
import type { SystemProgram } from "./system_packages.ts";

export const QEMU_SYSTEM: SystemProgram = {
  command: "qemu-system-x86_64",
  debianPackage: "qemu-system-x86",
};

export const QEMU_IMG: SystemProgram = { command: "qemu-img", debianPackage: "qemu-utils" };
