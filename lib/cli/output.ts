/**
 * The one place that decides how the CLI prints a result: JSON on stdout for machines (with
 * `--json`, or whenever stdout is not a terminal; `TML_OUTPUT=table|json` overrides), tables
 * on stdout for people. Messages and
 * warnings always go to stderr, so stdout stays parseable.
 */
import Table from "cli-table3";

export interface OutputOptions {
  json?: boolean;
}

/** JSON with --json, or when stdout is not a terminal, unless TML_OUTPUT says otherwise. */
export function wantsJson(options: OutputOptions): boolean {
  if (options.json === true) return true;
  const forced = Deno.env.get("TML_OUTPUT");
  if (forced === "table") return false;
  if (forced === "json") return true;
  return !Deno.stdout.isTerminal();
}

/** Prints one JSON document on stdout. */
export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, Deno.stdout.isTerminal() ? 2 : undefined));
}

/** Prints rows as a table for people, or `json` for machines. */
export function printResult(
  options: OutputOptions,
  json: unknown,
  table: { head: string[]; rows: Array<Array<string | number | null | undefined>> },
): void {
  if (wantsJson(options)) {
    printJson(json);
    return;
  }
  const rendered = new Table({ head: table.head, style: { head: [], border: [] } });
  for (const row of table.rows) {
    rendered.push(row.map((cell) => cell === null || cell === undefined ? "-" : String(cell)));
  }
  console.log(rendered.toString());
}

/** A message for people, on stderr. */
export function note(message: string): void {
  console.error(message);
}
