/** Flag helpers shared by the client commands' declarations (kept free of heavy imports). */

/** Collects a repeatable flag's values in order (`--ssh-key A --ssh-key B`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Help for every `--json` flag, naming its environment variable. */
export const JSON_HELP = "print JSON (the default when stdout is not a terminal; TML_OUTPUT=json)";
