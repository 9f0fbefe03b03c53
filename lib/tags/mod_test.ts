import fc from "fast-check";
import { assertEquals, assertThrows } from "../testing/asserts.ts";
import {
  globMatches,
  matchesTags,
  parseTagFilter,
  printTagFilter,
  type TagFilter,
  TagFilterSyntaxError,
} from "./mod.ts";

Deno.test("parseTagFilter() keeps Treadmill's meaning of a single tag and a;b", () => {
  const single = parseTagFilter("board:nrf52840dk");
  assertEquals(matchesTags(single, ["board:nrf52840dk", "site:lab1"]), true);
  assertEquals(matchesTags(single, ["board:nucleo"]), false);
  const both = parseTagFilter("board:nrf52840dk;site:lab1");
  assertEquals(matchesTags(both, ["site:lab1", "board:nrf52840dk"]), true);
  assertEquals(matchesTags(both, ["board:nrf52840dk"]), false);
});

Deno.test("parseTagFilter() of an empty or blank filter matches every supervisor", () => {
  assertEquals(parseTagFilter(""), { kind: "all" });
  assertEquals(parseTagFilter("   "), { kind: "all" });
  assertEquals(matchesTags(parseTagFilter(""), []), true);
});

Deno.test("parseTagFilter() gives ! over & over | and honours parentheses", () => {
  assertEquals(printTagFilter(parseTagFilter("a | b & !c")), "a | b & !c");
  assertEquals(parseTagFilter("a | b & c"), {
    kind: "or",
    items: [{ kind: "tag", pattern: "a" }, {
      kind: "and",
      items: [{ kind: "tag", pattern: "b" }, { kind: "tag", pattern: "c" }],
    }],
  });
  const grouped = parseTagFilter("(a | b) & !(c)");
  assertEquals(printTagFilter(grouped), "(a | b) & !c");
  assertEquals(matchesTags(grouped, ["b"]), true);
  assertEquals(matchesTags(grouped, ["b", "c"]), false);
});

Deno.test("parseTagFilter() supports * globs inside a tag", () => {
  const filter = parseTagFilter("board:nrf52*");
  assertEquals(matchesTags(filter, ["board:nrf52840dk"]), true);
  assertEquals(matchesTags(filter, ["board:nrf5"]), false);
  assertEquals(globMatches("a*b*c", "abc"), true);
  assertEquals(globMatches("a*b*c", "axxbyyc"), true);
  assertEquals(globMatches("a*bc", "abc"), true);
  assertEquals(globMatches("ab*bc", "abc"), false);
});

Deno.test("parseTagFilter() names the column and what was expected", () => {
  const cases: Array<[string, number, string]> = [
    ["a&(b", 5, `")"`],
    ["a &", 4, "a tag"],
    ["a b", 3, `"&", ";", "|" or the end`],
    ["board:x$", 8, `"&", ";", "|" or the end`],
    ["|a", 1, "a tag"],
  ];
  for (const [text, column, expected] of cases) {
    const error = assertThrows(() => parseTagFilter(text), TagFilterSyntaxError);
    assertEquals(error.column, column, text);
    assertEquals(error.message.includes(`expected ${expected}`), true, error.message);
    assertEquals(error.message.includes(`column ${column}`), true, error.message);
  }
});

const tagArb = fc.constantFrom("a", "b", "c", "board:x", "board:y*", "*:x");
const filterArb: fc.Arbitrary<TagFilter> = fc.letrec<{ filter: TagFilter }>((tie) => ({
  filter: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    tagArb.map((pattern) => ({ kind: "tag", pattern }) as TagFilter),
    tie("filter").map((item) => ({ kind: "not", item }) as TagFilter),
    fc.array(tie("filter"), { minLength: 2, maxLength: 3 }).map((items) =>
      ({ kind: "and", items }) as TagFilter
    ),
    fc.array(tie("filter"), { minLength: 2, maxLength: 3 }).map((items) =>
      ({ kind: "or", items }) as TagFilter
    ),
  ),
})).filter;
const tagSetArb = fc.array(fc.constantFrom("a", "b", "c", "board:x", "board:yes", "site:x"), {
  maxLength: 4,
});

/** Evaluation written independently of the module: tags matched by regular expressions. */
function reference(filter: TagFilter, tags: string[]): boolean {
  switch (filter.kind) {
    case "all":
      return true;
    case "tag": {
      const regex = new RegExp(
        "^" +
          filter.pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, "\\$&")).join(
            ".*",
          ) + "$",
      );
      return tags.some((tag) => regex.test(tag));
    }
    case "not":
      return !reference(filter.item, tags);
    case "and":
      return filter.items.every((item) => reference(item, tags));
    case "or":
      return filter.items.some((item) => reference(item, tags));
  }
}

Deno.test("printTagFilter() round-trips: print(parse(print(f))) == print(f)", () => {
  fc.assert(fc.property(filterArb, (filter) => {
    const printed = printTagFilter(filter);
    assertEquals(printTagFilter(parseTagFilter(printed)), printed);
  }));
});

Deno.test("matchesTags() agrees with a reference evaluation, before and after a round trip", () => {
  fc.assert(fc.property(filterArb, tagSetArb, (filter, tags) => {
    const expected = reference(filter, tags);
    assertEquals(matchesTags(filter, tags), expected);
    assertEquals(matchesTags(parseTagFilter(printTagFilter(filter)), tags), expected);
  }));
});

Deno.test("matchesTags() obeys De Morgan's laws", () => {
  fc.assert(fc.property(filterArb, filterArb, tagSetArb, (a, b, tags) => {
    const notAnd = matchesTags({ kind: "not", item: { kind: "and", items: [a, b] } }, tags);
    const orNots = matchesTags({
      kind: "or",
      items: [{ kind: "not", item: a }, { kind: "not", item: b }],
    }, tags);
    assertEquals(notAnd, orNots);
  }));
});
