/**
 * The guest recipes' error type, and how they run the programs that build an image (apt-get,
 * dpkg-deb, ldd, mkfs, qemu-img): a failure says which command failed and how it ended.
 */
import { TmlError } from "../../lib/errors.ts";

export class TestGuestError extends TmlError {
  constructor(message: string, cause?: unknown) {
    super("test_guest_build", message, { cause });
  }
}

/** Runs a program; throws a TestGuestError with the end of its stderr when it fails. */
export async function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(command, {
      args,
      cwd: options.cwd,
      env: options.env,
      stdin: "null",
    }).output();
  } catch (error) {
    throw new TestGuestError(`Cannot run "${command}": ${(error as Error).message}`, error);
  }
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-5).join("\n");
    throw new TestGuestError(
      `Cannot run "${command} ${args.join(" ")}": exit code ${output.code}: ${stderr}`,
    );
  }
  return new TextDecoder().decode(output.stdout);
}
