import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../testing/asserts.ts";
import {
  globMatches,
  matchesTags,
  MAX_TAG_FILTER_DEPTH,
  parseTagFilter,
  printTagFilter,
  Tag,
  type TagExpression,
  type TagFilter,
  TagFilterSyntaxError,
} from "./mod.ts";

const tag = (pattern: string): TagExpression => ({ kind: "tag", pattern });
const a = tag("a");
const b = tag("b");
const c = tag("c");

Deno.test("parseTagFilter() keeps Treadmill's meaning of a single tag and a;b", () => {
  const single = parseTagFilter("board:nrf52840dk");
  assertEquals(single, tag("board:nrf52840dk"));
  assertEquals(matchesTags(single, ["board:nrf52840dk", "site:lab1"]), true);
  assertEquals(matchesTags(single, ["board:nrf52840"]), false);
  const both = parseTagFilter("board:nrf52840dk;site:lab1");
  assertEquals(matchesTags(both, ["site:lab1", "board:nrf52840dk"]), true);
  assertEquals(matchesTags(both, ["board:nrf52840dk"]), false);
  const id = "supervisor:0f0e4bd2-64a6-4d5c-9d55-6f7f3b0e8a11";
  assertEquals(matchesTags(parseTagFilter(id), [id]), true);
});

Deno.test("parseTagFilter() of an empty or blank filter matches every supervisor", () => {
  for (const text of ["", "   ", "\t\n"]) {
    assertEquals(parseTagFilter(text), { kind: "all" });
    assertEquals(matchesTags(parseTagFilter(text), []), true);
  }
  assertEquals(printTagFilter({ kind: "all" }), "");
});

Deno.test("parseTagFilter() reads the grammar: ! over & and ; over |, parentheses, spaces", () => {
  const cases: Array<[string, TagFilter, string]> = [
    ["a&b", { kind: "and", items: [a, b] }, "a & b"],
    ["a;b;c", { kind: "and", items: [a, b, c] }, "a & b & c"],
    ["a ; b & c", { kind: "and", items: [a, b, c] }, "a & b & c"],
    ["a|b&c", { kind: "or", items: [a, { kind: "and", items: [b, c] }] }, "a | b & c"],
    ["a&b|c", { kind: "or", items: [{ kind: "and", items: [a, b] }, c] }, "a & b | c"],
    ["(a|b)&c", { kind: "and", items: [{ kind: "or", items: [a, b] }, c] }, "(a | b) & c"],
    ["!a&b", { kind: "and", items: [{ kind: "not", item: a }, b] }, "!a & b"],
    ["!(a&b)", { kind: "not", item: { kind: "and", items: [a, b] } }, "!(a & b)"],
    ["!!a", { kind: "not", item: { kind: "not", item: a } }, "!!a"],
    [" ( ( a ) ) ", a, "a"],
    ["a&(b&c)", { kind: "and", items: [a, { kind: "and", items: [b, c] }] }, "a & b & c"],
    ["a|(b|c)", { kind: "or", items: [a, { kind: "or", items: [b, c] }] }, "a | b | c"],
    ["! board:nrf52* | x", {
      kind: "or",
      items: [{ kind: "not", item: tag("board:nrf52*") }, tag("x")],
    }, "!board:nrf52* | x"],
    ["k=v+w@h/p_q-r.s", tag("k=v+w@h/p_q-r.s"), "k=v+w@h/p_q-r.s"],
  ];
  for (const [text, filter, printed] of cases) {
    assertEquals(parseTagFilter(text), filter, text);
    assertEquals(printTagFilter(filter), printed, text);
  }
});

Deno.test("matchesTags() evaluates operators and * globs", () => {
  const cases: Array<[string, string[], boolean]> = [
    ["board:nrf52*", ["board:nrf52840dk"], true],
    ["board:nrf52*", ["board:nrf52"], true],
    ["board:nrf52*", ["board:nrf5"], false],
    ["board:nrf52*", ["xboard:nrf52840dk"], false],
    ["*:lab1", ["site:lab1"], true],
    ["*", [], false],
    ["*", ["anything"], true],
    ["a*b*c", ["abc"], true],
    ["a*b*c", ["axxbyyc"], true],
    ["ab*bc", ["abc"], false],
    ["a*a", ["a"], false],
    ["a | b", ["b"], true],
    ["a & !b", ["a", "b"], false],
    ["a & !b", ["a"], true],
    ["!a", [], true],
    ["(a | b) & !c", ["b", "c"], false],
  ];
  for (const [text, tags, expected] of cases) {
    assertEquals(matchesTags(parseTagFilter(text), tags), expected, `${text} on ${tags}`);
  }
});

Deno.test("parseTagFilter() names the column and what was expected", () => {
  const cases: Array<[string, string]> = [
    ["a&(b", `Cannot parse tag filter "a&(b": expected ")" at column 5`],
    [
      "(a b)",
      `Cannot parse tag filter "(a b)": expected "&", ";", "|" or ")" at column 4, found "b"`,
    ],
    ["a &", `Cannot parse tag filter "a &": expected a tag, "!" or "(" at column 4`],
    ["a &   ", `Cannot parse tag filter "a &   ": expected a tag, "!" or "(" at column 7`],
    [
      "a b",
      `Cannot parse tag filter "a b": expected "&", ";", "|" or the end at column 3, found "b"`,
    ],
    [
      "a,b",
      `Cannot parse tag filter "a,b": expected "&", ";", "|" or the end at column 2, found ","`,
    ],
    [
      "board:x$",
      `Cannot parse tag filter "board:x$": expected "&", ";", "|" or the end at column 8, found "$"`,
    ],
    ["|a", `Cannot parse tag filter "|a": expected a tag, "!" or "(" at column 1, found "|"`],
    ["a;", `Cannot parse tag filter "a;": expected a tag, "!" or "(" at column 3`],
    ["()", `Cannot parse tag filter "()": expected a tag, "!" or "(" at column 2, found ")"`],
    [
      "a)",
      `Cannot parse tag filter "a)": expected "&", ";", "|" or the end at column 2, found ")"`,
    ],
    ["!", `Cannot parse tag filter "!": expected a tag, "!" or "(" at column 2`],
    [
      "a & 🚀",
      `Cannot parse tag filter "a & 🚀": expected a tag, "!" or "(" at column 5, found "🚀"`,
    ],
  ];
  for (const [text, message] of cases) {
    const error = assertThrows(() => parseTagFilter(text), TagFilterSyntaxError);
    assertEquals(error.message, message);
    assertEquals(error.column, Number(/column (\d+)/.exec(message)![1]), text);
    assertEquals(error.toJSON(), { code: "invalid_tag_filter", message });
    assertEquals(error.status, 400);
  }
});

Deno.test("parseTagFilter() refuses nesting deeper than MAX_TAG_FILTER_DEPTH", () => {
  const nested = (depth: number) => "(".repeat(depth) + "a" + ")".repeat(depth);
  assertEquals(parseTagFilter(nested(MAX_TAG_FILTER_DEPTH - 1)), a);
  const error = assertThrows(() => parseTagFilter(nested(100_000)), TagFilterSyntaxError);
  assertEquals(error.column, MAX_TAG_FILTER_DEPTH + 1);
  assert(error.message.length < 300, "the message cuts a long filter");
  assertThrows(() => parseTagFilter("!".repeat(100_000) + "a"), TagFilterSyntaxError);
});

Deno.test("Tag accepts the tag characters without the * glob", () => {
  for (const good of ["board:nrf52840dk", "supervisor:0f0e4bd2-64a6", "k=v+w@h/p_q-r.s"]) {
    assertEquals(Tag.safeParse(good).success, true, good);
  }
  for (const bad of ["", "a*", "a b", "a,b", "a;b", "x".repeat(129)]) {
    assertEquals(Tag.safeParse(bad).success, false, bad);
  }
});

// ---- Properties --------------------------------------------------------------------------

// Small alphabets, so that patterns and tags collide often enough to exercise the globs.
const patternArb = fc.string({
  unit: fc.constantFrom("a", "b", ":", "*"),
  minLength: 1,
  maxLength: 4,
});
const tagsArb = fc.array(
  fc.string({ unit: fc.constantFrom("a", "b", ":"), minLength: 1, maxLength: 4 }),
  {
    maxLength: 4,
  },
);
type TwoOrMore = [TagExpression, TagExpression, ...TagExpression[]];
const expressionArb: fc.Arbitrary<TagExpression> = fc.letrec<{ expression: TagExpression }>((
  tie,
) => ({
  expression: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    patternArb.map(tag),
    tie("expression").map((item): TagExpression => ({ kind: "not", item })),
    fc.array(tie("expression"), { minLength: 2, maxLength: 3 }).map((items): TagExpression => ({
      kind: "and",
      items: items as TwoOrMore,
    })),
    fc.array(tie("expression"), { minLength: 2, maxLength: 3 }).map((items): TagExpression => ({
      kind: "or",
      items: items as TwoOrMore,
    })),
  ),
})).expression;

/** The filter with an `and` directly inside an `and` (an `or` inside an `or`) flattened. */
function flatten(filter: TagExpression): TagExpression {
  switch (filter.kind) {
    case "tag":
      return filter;
    case "not":
      return { kind: "not", item: flatten(filter.item) };
    case "and":
    case "or": {
      const items = filter.items.map(flatten).flatMap((item) =>
        item.kind === filter.kind ? item.items : [item]
      );
      return { kind: filter.kind, items: items as TwoOrMore };
    }
  }
}

/**
 * A printer independent of the module's: every `and` and `or` in parentheses, `;` or `&` for
 * "and" and the spacing chosen by `choices`.
 */
function printNoisily(filter: TagExpression, choices: Iterator<number>): string {
  const choose = () => choices.next().value as number;
  const space = () => ["", " ", "\t", "  "][choose() % 4];
  switch (filter.kind) {
    case "tag":
      return filter.pattern;
    case "not":
      return `!${space()}${printNoisily(filter.item, choices)}`;
    case "and":
    case "or": {
      const operator = () => filter.kind === "or" ? "|" : choose() % 2 === 0 ? "&" : ";";
      const joined = filter.items.map((item) => printNoisily(item, choices))
        .reduce((left, right) => `${left}${space()}${operator()}${space()}${right}`);
      return `(${space()}${joined}${space()})`;
    }
  }
}

/** Whether `tag` matches `pattern`, by dynamic programming over prefixes (no regex, no search). */
function referenceGlob(pattern: string, tag: string): boolean {
  // matched[j]: the pattern's first i characters match the tag's first j characters.
  let matched = Array.from({ length: tag.length + 1 }, (_, j) => j === 0);
  for (const char of pattern) {
    const next = Array<boolean>(tag.length + 1).fill(false);
    for (let j = 0; j <= tag.length; j++) {
      next[j] = char === "*"
        ? matched[j] || (j > 0 && next[j - 1])
        : j > 0 && matched[j - 1] && tag[j - 1] === char;
    }
    matched = next;
  }
  return matched[tag.length];
}

function referenceMatches(filter: TagExpression, tags: string[]): boolean {
  switch (filter.kind) {
    case "tag":
      return tags.some((tag) => referenceGlob(filter.pattern, tag));
    case "not":
      return !referenceMatches(filter.item, tags);
    case "and":
      return filter.items.every((item) => referenceMatches(item, tags));
    case "or":
      return filter.items.some((item) => referenceMatches(item, tags));
  }
}

Deno.test("parseTagFilter() of printTagFilter() is the filter with nested and/or flattened", () => {
  fc.assert(fc.property(expressionArb, (filter) => {
    assertEquals(parseTagFilter(printTagFilter(filter)), flatten(filter));
  }));
});

Deno.test("printTagFilter() is canonical: print(parse(print(f))) == print(f)", () => {
  fc.assert(fc.property(expressionArb, (filter) => {
    const printed = printTagFilter(filter);
    assertEquals(printTagFilter(parseTagFilter(printed)), printed);
  }));
});

Deno.test("parseTagFilter() reads a fully parenthesised filter with any spacing and ; for &", () => {
  fc.assert(fc.property(expressionArb, fc.infiniteStream(fc.nat()), (filter, choices) => {
    assertEquals(parseTagFilter(printNoisily(filter, choices[Symbol.iterator]())), filter);
  }));
});

Deno.test("globMatches() agrees with a reference matcher", () => {
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom("a", "b", "*"), maxLength: 5 }),
      fc.string({ unit: fc.constantFrom("a", "b"), maxLength: 3 }),
      (pattern, tag) => {
        assertEquals(globMatches(pattern, tag), referenceGlob(pattern, tag));
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("matchesTags() agrees with a reference evaluation, before and after a round trip", () => {
  fc.assert(fc.property(expressionArb, tagsArb, (filter, tags) => {
    const expected = referenceMatches(filter, tags);
    assertEquals(matchesTags(filter, tags), expected);
    assertEquals(matchesTags(parseTagFilter(printTagFilter(filter)), tags), expected);
  }));
});

Deno.test("matchesTags() obeys De Morgan's laws and double negation", () => {
  fc.assert(fc.property(expressionArb, expressionArb, tagsArb, (x, y, tags) => {
    const not = (item: TagExpression): TagExpression => ({ kind: "not", item });
    const matches = (filter: TagExpression) => matchesTags(filter, tags);
    assertEquals(
      matches(not({ kind: "and", items: [x, y] })),
      matches({ kind: "or", items: [not(x), not(y)] }),
    );
    assertEquals(
      matches(not({ kind: "or", items: [x, y] })),
      matches({ kind: "and", items: [not(x), not(y)] }),
    );
    assertEquals(matches(not(not(x))), matches(x));
  }));
});

Deno.test("parseTagFilter() of any text parses or throws a TagFilterSyntaxError inside it", () => {
  const textArb = fc.string({
    unit: fc.constantFrom("a", "*", " ", "&", ";", "|", "!", "(", ")", ",", "$"),
    maxLength: 12,
  });
  fc.assert(
    fc.property(textArb, (text) => {
      try {
        const filter = parseTagFilter(text);
        assertEquals(
          parseTagFilter(printTagFilter(filter)),
          filter.kind === "all" ? filter : flatten(filter),
        );
      } catch (error) {
        assert(error instanceof TagFilterSyntaxError, String(error));
        assert(
          error.column >= 1 && error.column <= text.length + 1,
          `column ${error.column} of "${text}"`,
        );
      }
    }),
    { numRuns: 1000 },
  );
});
