/**
 * Tag filter expressions: which supervisors a job may run on, given the supervisor's tags.
 * Treadmill's forms keep their meaning (`board:nrf52840dk`; `a;b` requires every listed tag;
 * empty or blank matches every supervisor), and tml adds `&` (and), `|` (or), `!` (not),
 * parentheses and `*` globs inside a tag (`board:nrf52*`).
 *
 *   filter     = [ expression ]                  (empty or blank: matches every supervisor)
 *   expression = and { "|" and }                 (weakest)
 *   and        = not { ( "&" | ";" ) not }       (";" is Treadmill's separator, a synonym)
 *   not        = "!" not | primary               (strongest)
 *   primary    = "(" expression ")" | pattern
 *   pattern    = 1*( tag-char | "*" )            ("*" matches any run of characters, or none)
 *   tag-char   = ALPHA / DIGIT / "_" / "-" / "." / ":" / "/" / "=" / "+" / "@"
 *
 * Whitespace may surround any token. A pattern matches a supervisor when one of its tags
 * matches the whole pattern; `*` is the only wildcard, so tags need no escaping.
 */
import { z } from "zod";
import { TmlError } from "../errors.ts";

/** A filter other than the empty one. `and` and `or` have two items or more. */
export type TagExpression =
  | { kind: "tag"; pattern: string }
  | { kind: "and"; items: [TagExpression, TagExpression, ...TagExpression[]] }
  | { kind: "or"; items: [TagExpression, TagExpression, ...TagExpression[]] }
  | { kind: "not"; item: TagExpression };

/** A parsed filter: `all` is the empty filter, which matches every supervisor. */
export type TagFilter = { kind: "all" } | TagExpression;

/** A supervisor's tag: tag characters only (no `*`, so a tag never looks like a pattern). */
export const Tag = z.string().regex(
  /^[A-Za-z0-9_\-.:/=+@]{1,128}$/,
  `expected 1 to 128 letters, digits or "_-.:/=+@"`,
);
export type Tag = z.infer<typeof Tag>;

const PATTERN_CHAR = /[A-Za-z0-9_\-.:/=+@*]/;

/** Deeper nesting is refused rather than risk the parser's and evaluator's stack. */
export const MAX_TAG_FILTER_DEPTH = 64;

export class TagFilterSyntaxError extends TmlError {
  /** 1-based column where the parser expected something else. */
  readonly column: number;

  constructor(text: string, column: number, expected: string) {
    const code = text.codePointAt(column - 1);
    const found = code === undefined ? undefined : String.fromCodePoint(code);
    super(
      "invalid_tag_filter",
      `Cannot parse tag filter "${abbreviate(text)}": expected ${expected} at column ${column}` +
        (found === undefined ? "" : `, found "${found}"`),
      { status: 400 },
    );
    this.column = column;
  }
}

/** Parses a tag filter; throws `TagFilterSyntaxError` naming the column and what was expected. */
export function parseTagFilter(text: string): TagFilter {
  const parser = new Parser(text);
  if (parser.atEnd()) return { kind: "all" };
  const filter = parser.expression(0);
  if (!parser.atEnd()) parser.fail(`"&", ";", "|" or the end`);
  return filter;
}

/** A recursive-descent parser over `text`; every method skips the whitespace before a token. */
class Parser {
  #position = 0;

  constructor(private readonly text: string) {}

  atEnd(): boolean {
    this.#skipSpace();
    return this.#position >= this.text.length;
  }

  fail(expected: string): never {
    throw new TagFilterSyntaxError(this.text, this.#position + 1, expected);
  }

  expression(depth: number): TagExpression {
    const [first, ...rest] = this.#list("|", () => this.#and(depth));
    return rest.length === 0 ? first : { kind: "or", items: [first, ...rest] as TwoOrMore };
  }

  #and(depth: number): TagExpression {
    const [first, ...rest] = this.#list("&;", () => this.#not(depth));
    return rest.length === 0 ? first : { kind: "and", items: [first, ...rest] as TwoOrMore };
  }

  #not(depth: number): TagExpression {
    if (depth >= MAX_TAG_FILTER_DEPTH) {
      this.#skipSpace();
      this.fail(`at most ${MAX_TAG_FILTER_DEPTH} nested "!" and "("`);
    }
    if (this.#take("!")) return { kind: "not", item: this.#not(depth + 1) };
    if (this.#take("(")) {
      const inner = this.expression(depth + 1);
      // At the end, the one thing missing is the ")"; before other text, an operator may be.
      if (!this.#take(")")) this.fail(this.atEnd() ? `")"` : `"&", ";", "|" or ")"`);
      return inner;
    }
    const start = this.#position;
    while (PATTERN_CHAR.test(this.text[this.#position] ?? "")) this.#position++;
    if (this.#position === start) this.fail(`a tag, "!" or "("`);
    return { kind: "tag", pattern: this.text.slice(start, this.#position) };
  }

  /** One or more `item`s separated by any of the `separators`. */
  #list(separators: string, item: () => TagExpression): TagExpression[] {
    const items = [item()];
    while ([...separators].some((separator) => this.#take(separator))) items.push(item());
    return items;
  }

  #take(token: string): boolean {
    this.#skipSpace();
    if (this.text[this.#position] !== token) return false;
    this.#position++;
    return true;
  }

  #skipSpace(): void {
    while (/\s/.test(this.text[this.#position] ?? "")) this.#position++;
  }
}

type TwoOrMore = [TagExpression, TagExpression, ...TagExpression[]];

/**
 * Prints a filter canonically: operators `&`, `|`, `!` with spaces around `&` and `|`, and
 * only the parentheses precedence needs. Nested `and`s (and `or`s) print flat, so
 * `parseTagFilter(printTagFilter(f))` is `f` with such nesting flattened.
 */
export function printTagFilter(filter: TagFilter): string {
  return filter.kind === "all" ? "" : print(filter, BINDING.or);
}

// How tightly each form binds; a child that binds more loosely than its parent's operator
// needs parentheses. An `and` inside an `and` needs none: `&` is associative.
const BINDING = { or: 1, and: 2, not: 3, tag: 3 } as const;

function print(expression: TagExpression, context: number): string {
  let text: string;
  switch (expression.kind) {
    case "tag":
      return expression.pattern;
    case "not":
      return `!${print(expression.item, BINDING.not)}`;
    case "and":
      text = expression.items.map((item) => print(item, BINDING.and)).join(" & ");
      break;
    case "or":
      text = expression.items.map((item) => print(item, BINDING.or)).join(" | ");
      break;
  }
  return BINDING[expression.kind] < context ? `(${text})` : text;
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

/**
 * Whether `tag` matches `pattern`, where `*` matches any run of characters (including none)
 * and every other character matches itself. Linear, without backtracking: the text before the
 * first `*` must start the tag, the text after the last must end it, and each piece between
 * them is taken at its earliest place, which never rules out a match a later place would allow.
 */
export function globMatches(pattern: string, tag: string): boolean {
  const pieces = pattern.split("*");
  if (pieces.length === 1) return pattern === tag;
  const first = pieces[0];
  const last = pieces[pieces.length - 1];
  if (tag.length < first.length + last.length || !tag.startsWith(first) || !tag.endsWith(last)) {
    return false;
  }
  const end = tag.length - last.length;
  let position = first.length;
  for (const piece of pieces.slice(1, -1)) {
    const found = tag.indexOf(piece, position);
    if (found < 0 || found + piece.length > end) return false;
    position = found + piece.length;
  }
  return true;
}

/** Long filters are cut in messages, which end up in logs and responses. */
function abbreviate(text: string): string {
  return text.length <= 100 ? text : `${text.slice(0, 99)}…`;
}
