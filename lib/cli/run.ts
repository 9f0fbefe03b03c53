/**
 * Runs a commander program and turns failures into a message on stderr and a non-zero exit code.
 * Every command reports errors by throwing; this is the one place that prints them.
 */
import { type Command, CommanderError } from "commander";
import { TmlError } from "../errors.ts";

/** Exit code for usage errors (bad flags, bad input given on the command line). */
export const EXIT_USAGE = 2;
/** Exit code for any other failure. */
export const EXIT_FAILURE = 1;

export async function runCli(program: Command, args: string[]): Promise<never> {
  program.exitOverride();
  try {
    await program.parseAsync(args, { from: "user" });
    Deno.exit(0);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed its message (or the help/version text).
      Deno.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
    }
    if (error instanceof TmlError) {
      console.error(`tml: ${error.message}`);
      if (Deno.env.get("TML_DEBUG") && error.cause !== undefined) console.error(error.cause);
      // Invalid input is a usage error; refusals (401, 403, 404, 409…) are plain failures.
      Deno.exit(error.status === 400 || error.status === 413 ? EXIT_USAGE : EXIT_FAILURE);
    }
    console.error(`tml: ${error instanceof Error ? error.message : String(error)}`);
    if (Deno.env.get("TML_DEBUG") && error instanceof Error) console.error(error.stack);
    Deno.exit(EXIT_FAILURE);
  }
}
