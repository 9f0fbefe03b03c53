/**
 * Runs a commander program and turns failures into a message on stderr and a non-zero exit code.
 * Every command reports errors by throwing; this is the one place that prints them. The codes
 * are those of lib/cli/exit_codes.ts.
 */
import { type Command, CommanderError } from "commander";
import { TmlError } from "../errors.ts";
import { EXIT_FAILURE, EXIT_SUCCESS, EXIT_USAGE, ExitRequest } from "./exit_codes.ts";

export { EXIT_FAILURE, EXIT_USAGE };

export async function runCli(program: Command, args: string[]): Promise<never> {
  program.exitOverride();
  try {
    await program.parseAsync(helpForNested(args), { from: "user" });
    Deno.exit(EXIT_SUCCESS);
  } catch (error) {
    // The command printed its result and chose its own code (`tml job wait`).
    if (error instanceof ExitRequest) Deno.exit(error.code);
    if (error instanceof CommanderError) {
      // Commander already printed its message (or the help/version text).
      Deno.exit(error.exitCode === 0 ? EXIT_SUCCESS : EXIT_USAGE);
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

/**
 * Commander's `help` command takes one command name; `tml help job wait` means the help of
 * `tml job wait`, which is `tml job wait --help`.
 */
function helpForNested(args: string[]): string[] {
  return args[0] === "help" && args.length > 2 ? [...args.slice(1), "--help"] : args;
}
