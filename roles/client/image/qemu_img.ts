/**
 * Reads what `tml image create` needs to know about a qcow2 file from `qemu-img info
 * --output=json`: its format, virtual size and backing file. `qemu-img` comes from the Debian
 * package `qemu-utils`, installed on demand when running as root.
 */
import { z } from "zod";
import { requireProgram } from "../../../lib/system_packages.ts";
import { QEMU_IMG } from "../../../lib/qemu_programs.ts";
import { formatZodError } from "../../../lib/zod_issues.ts";
import { ImageCommandError } from "./errors.ts";

export const QemuImgInfo = z.object({
  format: z.string(),
  "virtual-size": z.number().int().nonnegative(),
  "backing-filename": z.string().optional(),
  "full-backing-filename": z.string().optional(),
  "backing-filename-format": z.string().optional(),
});
export type QemuImgInfo = z.infer<typeof QemuImgInfo>;

export async function qemuImgInfo(path: string): Promise<QemuImgInfo> {
  const qemuImg = await requireProgram(QEMU_IMG);
  // -U: read even while a VM holds the image open (info only reads the header).
  const output = await new Deno.Command(qemuImg, {
    args: ["info", "-U", "--output=json", path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    const detail = new TextDecoder().decode(output.stderr).trim();
    throw new ImageCommandError("invalid_layer", `Cannot inspect "${path}": ${detail}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(output.stdout));
  } catch (error) {
    throw new ImageCommandError(
      "invalid_layer",
      `Cannot inspect "${path}": qemu-img printed no JSON`,
      {
        cause: error,
      },
    );
  }
  const parsed = QemuImgInfo.safeParse(json);
  if (!parsed.success) {
    throw new ImageCommandError(
      "invalid_layer",
      `Cannot inspect "${path}": ${formatZodError(parsed.error, "qemu-img info")}`,
    );
  }
  return parsed.data;
}
