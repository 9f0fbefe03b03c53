/**
 * The one place that decides how the CLI prints a result: JSON on stdout for machines (with
 * `--json`, or whenever stdout is not a terminal; `TML_OUTPUT=table|json` overrides the guess),
 * tables on stdout for people. Messages and warnings always go to stderr, so stdout stays
 * parseable.
 */
import Table from "cli-table3";

export interface OutputOptions {
  json?: boolean;
}

/** What the choice depends on besides the flag; injectable for tests. */
export interface OutputContext {
  stdoutIsTerminal: boolean;
  /** The value of `TML_OUTPUT`. */
  outputEnv: string | undefined;
}

function currentContext(): OutputContext {
  return { stdoutIsTerminal: Deno.stdout.isTerminal(), outputEnv: Deno.env.get("TML_OUTPUT") };
}

/** JSON with --json; else as TML_OUTPUT says; else JSON unless stdout is a terminal. */
export function wantsJson(options: OutputOptions, context = currentContext()): boolean {
  if (options.json === true) return true;
  if (context.outputEnv === "table") return false;
  if (context.outputEnv === "json") return true;
  return !context.stdoutIsTerminal;
}

/** Prints one JSON document on stdout: indented for a terminal, one line for a pipe. */
export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, Deno.stdout.isTerminal() ? 2 : undefined));
}

export type TableCell = string | number | boolean | null | undefined;

export interface TableData {
  head: string[];
  rows: TableCell[][];
}

/** Renders rows for people; empty cells show as "-". */
export function renderTable(table: TableData): string {
  const rendered = new Table({
    head: table.head,
    style: { head: [], border: [], compact: true },
  });
  for (const row of table.rows) {
    rendered.push(row.map((cell) => cell === null || cell === undefined ? "-" : String(cell)));
  }
  return rendered.toString();
}

/** Prints `json` for machines, or the table for people. */
export function printResult(options: OutputOptions, json: unknown, table: TableData): void {
  if (wantsJson(options)) printJson(json);
  else console.log(renderTable(table));
}

/** One object as a two-column field/value table; nested values as compact JSON. */
export function fieldTable(value: Record<string, unknown>): TableData {
  return {
    head: ["field", "value"],
    rows: Object.entries(value).map(([key, field]) => [
      key,
      field !== null && typeof field === "object" ? JSON.stringify(field) : field as TableCell,
    ]),
  };
}

/** A message for people, on stderr. */
export function note(message: string): void {
  console.error(message);
}
