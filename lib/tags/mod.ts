/**
 * Tag filter expressions: which supervisors a job may run on. Treadmill's forms keep their
 * meaning (`board:nrf52840dk`; `a;b` requires every listed tag; empty matches all), and tml
 * adds `&` (and), `|` (or), `!` (not), parentheses and `*` globs inside a tag.
 *
 *   filter  = [ or ]                    (empty: matches every supervisor)
 *   or      = and { "|" and }
 *   and     = not { ("&" | ";") not }
 *   not     = "!" not | primary
 *   primary = "(" or ")" | tag
 *   tag     = 1*( ALPHA / DIGIT / "_" / "-" / "." / ":" / "/" / "=" / "+" / "@" / "*" )
 */
import { TmlError } from "../errors.ts";

export type TagFilter =
  | { kind: "all" }
  | { kind: "tag"; pattern: string }
  | { kind: "and"; items: TagFilter[] }
  | { kind: "or"; items: TagFilter[] }
  | { kind: "not"; item: TagFilter };

export class TagFilterSyntaxError extends TmlError {
  readonly column: number;

  constructor(text: string, column: number, expected: string) {
    super(
      "invalid_tag_filter",
      `Cannot parse tag filter "${text}": expected ${expected} at column ${column}`,
      {
        status: 400,
      },
    );
    this.column = column;
  }
}

const TAG_CHAR = /[A-Za-z0-9_\-.:/=+@*]/;

/** Parses a tag filter; throws `TagFilterSyntaxError` naming the column and what was expected. */
export function parseTagFilter(text: string): TagFilter {
  const parser = new Parser(text);
  parser.skipSpace();
  if (parser.atEnd()) return { kind: "all" };
  const filter = parser.parseOr();
  parser.skipSpace();
  if (!parser.atEnd()) parser.fail(`"&", ";", "|" or the end`);
  return filter;
}

class Parser {
  #pos = 0;
  constructor(private readonly text: string) {}

  atEnd(): boolean {
    return this.#pos >= this.text.length;
  }

  skipSpace(): void {
    while (!this.atEnd() && /\s/.test(this.text[this.#pos])) this.#pos++;
  }

  fail(expected: string): never {
    throw new TagFilterSyntaxError(this.text, this.#pos + 1, expected);
  }

  #take(chars: string): string | undefined {
    this.skipSpace();
    const char = this.text[this.#pos];
    if (char !== undefined && chars.includes(char)) {
      this.#pos++;
      return char;
    }
    return undefined;
  }

  parseOr(): TagFilter {
    const items = [this.parseAnd()];
    while (this.#take("|") !== undefined) items.push(this.parseAnd());
    return items.length === 1 ? items[0] : { kind: "or", items };
  }

  parseAnd(): TagFilter {
    const items = [this.parseNot()];
    while (this.#take("&;") !== undefined) items.push(this.parseNot());
    return items.length === 1 ? items[0] : { kind: "and", items };
  }

  parseNot(): TagFilter {
    if (this.#take("!") !== undefined) return { kind: "not", item: this.parseNot() };
    return this.parsePrimary();
  }

  parsePrimary(): TagFilter {
    if (this.#take("(") !== undefined) {
      const inner = this.parseOr();
      if (this.#take(")") === undefined) this.fail(`")"`);
      return inner;
    }
    this.skipSpace();
    const start = this.#pos;
    while (!this.atEnd() && TAG_CHAR.test(this.text[this.#pos])) this.#pos++;
    if (this.#pos === start) this.fail(`a tag, "!" or "("`);
    return { kind: "tag", pattern: this.text.slice(start, this.#pos) };
  }
}

/** Prints a filter canonically, with the fewest parentheses that keep its meaning. */
export function printTagFilter(filter: TagFilter): string {
  return print(filter, 0);
}

// Binding strength: or < and < not/tag. A child weaker than its context gets parentheses.
const STRENGTH = { all: 3, tag: 3, not: 3, and: 2, or: 1 } as const;

function print(filter: TagFilter, context: number): string {
  let text: string;
  switch (filter.kind) {
    case "all":
      return "";
    case "tag":
      return filter.pattern;
    case "not":
      text = `!${print(filter.item, 3)}`;
      break;
    case "and":
      text = filter.items.map((item) => print(item, 3)).join(" & ");
      break;
    case "or":
      text = filter.items.map((item) => print(item, 2)).join(" | ");
      break;
  }
  return STRENGTH[filter.kind] < context ? `(${text})` : text;
}

/** Whether a supervisor with `tags` satisfies the filter. */
export function matchesTags(filter: TagFilter, tags: readonly string[]): boolean {
  switch (filter.kind) {
    case "all":
      return true;
    case "tag":
      return tags.some((tag) => globMatches(filter.pattern, tag));
    case "and":
      return filter.items.every((item) => matchesTags(item, tags));
    case "or":
      return filter.items.some((item) => matchesTags(item, tags));
    case "not":
      return !matchesTags(filter.item, tags);
  }
}

/** `*` matches any run of characters (including none); everything else matches itself. */
export function globMatches(pattern: string, tag: string): boolean {
  if (!pattern.includes("*")) return pattern === tag;
  const parts = pattern.split("*");
  const first = parts[0];
  const last = parts[parts.length - 1];
  if (!tag.startsWith(first) || tag.length < first.length + last.length || !tag.endsWith(last)) {
    return false;
  }
  let position = first.length;
  const end = tag.length - last.length;
  for (const middle of parts.slice(1, -1)) {
    const found = tag.indexOf(middle, position);
    if (found < 0 || found + middle.length > end) return false;
    position = found + middle.length;
  }
  return true;
}
