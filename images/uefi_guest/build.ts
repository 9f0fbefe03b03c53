/**
 * The UEFI guest recipe: the test guest's kernel, initramfs and tml disk laid out as a
 * Treadmill-style UEFI disk image, to prove that such images boot under tml's QEMU
 * supervisor. It is one qcow2 layer holding a GPT disk, and its manifest is a plain
 * `qemu_layered_v0` image without tml's kernel-boot attributes, so it boots through firmware:
 *
 *   OVMF -> ESP /EFI/BOOT/BOOTX64.EFI (GRUB) -> /EFI/BOOT/grub.cfg -> /vmlinuz + /initrd.gz
 *        -> /init mounts partition 2 (/dev/vda2, ext4: deno and tml) -> `tml puppet`
 *
 *   GPT disk:  1 MiB gap | partition 1: EFI system partition (FAT) | partition 2: ext4 | 1 MiB
 *
 * Every filesystem is built as a file (mkfs.fat + mtools, mke2fs -d) and copied into place
 * with dd, so the build needs no root and no loop device. Cached like the test guest, under
 * `.cache/uefi-guest/<key>`.
 *
 * Usage: deno run -A images/uefi_guest/build.ts    prints the image id
 */
import { join } from "node:path";
import { QEMU_LAYERED } from "../../lib/store/mod.ts";
import { requireProgram } from "../../lib/system_packages.ts";
import {
  buildGuest,
  type BuildOptions,
  convertToQcow2,
  type GuestLayout,
  type GuestParts,
  type GuestRecipe,
  KERNEL_CMDLINE,
  run,
  type TestGuest,
  TestGuestError,
} from "../test_guest/build.ts";

const REPO = new URL("../../", import.meta.url).pathname;
export const DEFAULT_CACHE_ROOT = join(REPO, ".cache/uefi-guest");
const MIB = 1024 * 1024;
/** The disk's partition holding the tml disk's ext4 filesystem, as the guest kernel names it. */
const TML_PARTITION = "/dev/vda2";
/** Where the firmware looks for a boot loader on removable media and on a fresh NVRAM. */
const BOOT_DIR = "/EFI/BOOT";

/**
 * GRUB's configuration: commands only, no menu, so there is no timeout to wait out; GRUB
 * boots the kernel as soon as it has read this file.
 */
const GRUB_CONFIG = `linux /vmlinuz ${KERNEL_CMDLINE}
initrd /initrd.gz
boot
`;

/** Modules built into GRUB's EFI binary (with their dependencies); it loads no others. */
const GRUB_MODULES = ["part_gpt", "fat", "normal", "linux", "boot", "efi_gop"];

const UEFI_GUEST: GuestRecipe = {
  name: "uefi-guest",
  cacheRoot: DEFAULT_CACHE_ROOT,
  files: [new URL(import.meta.url).pathname],
  packages: ["grub-efi-amd64-bin"],
  diskDevice: TML_PARTITION,
  async layout(parts: GuestParts, scratch: string): Promise<GuestLayout> {
    const esp = await buildEsp(parts, scratch);
    const raw = await buildGptDisk(esp, parts.disk, join(scratch, "uefi-disk.raw"));
    const qcow2 = join(scratch, "uefi-disk.qcow2");
    const virtualSize = await convertToQcow2(raw, qcow2);
    return {
      label: "tml UEFI guest",
      attrs: { [`${QEMU_LAYERED}.head`]: "disk" },
      blobs: [{
        label: "disk",
        file: qcow2,
        attrs: { [`${QEMU_LAYERED}.blob-virtual-size`]: String(virtualSize) },
      }],
    };
  },
};

/** Builds the UEFI guest, or returns the cached build of the same inputs. */
export function buildUefiGuest(options: BuildOptions = {}): Promise<TestGuest> {
  return buildGuest(UEFI_GUEST, options);
}

/** The EFI system partition as a FAT image file: GRUB, its config, the kernel and initramfs. */
async function buildEsp(parts: GuestParts, scratch: string): Promise<string> {
  const grub = join(scratch, "BOOTX64.EFI");
  const grubMkimage = await requireProgram({
    command: "grub-mkimage",
    debianPackage: "grub-common",
  });
  // The prefix has no device, so GRUB takes the partition it was loaded from, and reads its
  // config from <prefix>/grub.cfg in normal mode.
  await run(grubMkimage, [
    "--format=x86_64-efi",
    `--directory=${join(parts.root, "usr/lib/grub/x86_64-efi")}`,
    `--prefix=${BOOT_DIR}`,
    `--output=${grub}`,
    ...GRUB_MODULES,
  ]);
  const config = join(scratch, "grub.cfg");
  await Deno.writeTextFile(config, GRUB_CONFIG);

  const files: [string, string][] = [
    [grub, `${BOOT_DIR}/BOOTX64.EFI`],
    [config, `${BOOT_DIR}/grub.cfg`],
    [parts.kernel, "/vmlinuz"],
    [parts.initrd, "/initrd.gz"],
  ];
  let bytes = 0;
  for (const [file] of files) bytes += (await Deno.stat(file)).size;
  // Room for the FAT tables and directories; a whole number of MiB keeps partitions aligned.
  const size = Math.ceil((bytes * 1.1 + 2 * MIB) / MIB) * MIB;
  const esp = join(scratch, "esp.fat");
  const mkfsFat = await requireProgram({
    command: "mkfs.fat",
    debianPackage: "dosfstools",
    searchDirs: ["/usr/sbin", "/sbin"],
  });
  await run(mkfsFat, ["-C", "-n", "ESP", esp, String(size / 1024)]);
  const mmd = await requireProgram({ command: "mmd", debianPackage: "mtools" });
  const mcopy = await requireProgram({ command: "mcopy", debianPackage: "mtools" });
  await run(mmd, ["-i", esp, "::/EFI", `::${BOOT_DIR}`]);
  for (const [file, path] of files) await run(mcopy, ["-i", esp, file, `::${path}`]);
  return esp;
}

/** A raw GPT disk with the ESP as partition 1 and the ext4 tml disk as partition 2. */
async function buildGptDisk(esp: string, ext4: string, out: string): Promise<string> {
  const espMiB = (await Deno.stat(esp)).size / MIB;
  const ext4MiB = (await Deno.stat(ext4)).size / MIB;
  if (!Number.isInteger(espMiB) || !Number.isInteger(ext4MiB)) {
    throw new TestGuestError(
      `Cannot lay out the UEFI disk: partition sizes are not whole MiB: ${espMiB}, ${ext4MiB}`,
    );
  }
  // 1 MiB before the partitions for the protective MBR and the GPT, 1 MiB after for its backup.
  await Deno.writeFile(out, new Uint8Array());
  await Deno.truncate(out, (1 + espMiB + ext4MiB + 1) * MIB);
  const sgdisk = await requireProgram({
    command: "sgdisk",
    debianPackage: "gdisk",
    searchDirs: ["/usr/sbin", "/sbin"],
  });
  const sectors = MIB / 512;
  const espStart = sectors;
  const ext4Start = espStart + espMiB * sectors;
  await run(sgdisk, [
    `--new=1:${espStart}:${ext4Start - 1}`,
    "--typecode=1:ef00",
    "--change-name=1:EFI system partition",
    `--new=2:${ext4Start}:${ext4Start + ext4MiB * sectors - 1}`,
    "--typecode=2:8300",
    "--change-name=2:tml",
    out,
  ]);
  for (const [file, startMiB] of [[esp, 1], [ext4, 1 + espMiB]] as const) {
    await run("dd", [
      `if=${file}`,
      `of=${out}`,
      "bs=1M",
      `seek=${startMiB}`,
      "conv=notrunc,sparse",
      "status=none",
    ]);
  }
  return out;
}

if (import.meta.main) {
  const started = performance.now();
  const guest = await buildUefiGuest();
  console.error(
    `uefi-guest: image ready in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  console.log(guest.imageId);
}
