/** The QEMU programs and firmware tml drives, with the Debian packages that provide them. */
import {
  installDebianPackages,
  MissingProgramError,
  type SystemProgram,
} from "./system_packages.ts";

export const QEMU_SYSTEM: SystemProgram = {
  command: "qemu-system-x86_64",
  debianPackage: "qemu-system-x86",
};

export const QEMU_IMG: SystemProgram = { command: "qemu-img", debianPackage: "qemu-utils" };

/** UEFI firmware for QEMU: the code (read-only) and the template of its variable store. */
export interface OvmfFirmware {
  code: string;
  vars: string;
}

const OVMF_DIR = "/usr/share/OVMF";
const OVMF_PACKAGE = "ovmf";

/** Finds Debian's OVMF firmware, installing `ovmf` first when missing and running as root. */
export async function requireOvmf(): Promise<OvmfFirmware> {
  const find = async () => {
    for (const suffix of ["_4M", ""]) {
      const firmware = {
        code: `${OVMF_DIR}/OVMF_CODE${suffix}.fd`,
        vars: `${OVMF_DIR}/OVMF_VARS${suffix}.fd`,
      };
      const present = await Promise.all(
        [firmware.code, firmware.vars].map((path) => Deno.stat(path).then(() => true, () => false)),
      );
      if (present.every(Boolean)) return firmware;
    }
    return undefined;
  };
  const found = await find();
  if (found !== undefined) return found;
  if (Deno.uid() !== 0) {
    throw new MissingProgramError(
      `Cannot find the UEFI firmware ${OVMF_DIR}/OVMF_CODE_4M.fd: install the Debian package ` +
        `"${OVMF_PACKAGE}" (sudo apt-get install -y ${OVMF_PACKAGE})`,
    );
  }
  await installDebianPackages([OVMF_PACKAGE]);
  const installed = await find();
  if (installed === undefined) {
    throw new MissingProgramError(
      `Cannot find the UEFI firmware in ${OVMF_DIR} after installing "${OVMF_PACKAGE}"`,
    );
  }
  return installed;
}
