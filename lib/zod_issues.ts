/**
 * Turns zod issues into the one-line messages tml prints everywhere:
 * `parameters.x.value: expected string, got number (request body)`.
 */
import type { z } from "zod";

/** Dotted path of an issue; `(root)` for the value itself. */
export function issuePath(issue: z.core.$ZodIssue): string {
  if (issue.path.length === 0) return "(root)";
  return issue.path.map((segment) => String(segment)).join(".");
}

/** Formats one issue as `path: message (source)`. */
export function formatIssue(issue: z.core.$ZodIssue, source: string): string {
  return `${issuePath(issue)}: ${issue.message.replace(/^Invalid input: /, "")} (${source})`;
}

/** Formats all issues of an error, one per line, most useful first. */
export function formatZodError(error: z.ZodError, source: string): string {
  return error.issues.map((issue) => formatIssue(issue, source)).join("\n");
}
