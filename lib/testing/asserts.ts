/**
 * The assertions tml's tests use. `@std/assert` lives on JSR, which is unreachable here, so this
 * module re-exports Node's `assert` behind the names Deno's standard library uses.
 */
import assert from "node:assert/strict";

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assert.deepStrictEqual(actual, expected, message);
}

export function assertNotEquals<T>(actual: T, expected: T, message?: string): void {
  assert.notDeepStrictEqual(actual, expected, message);
}

export function assert_(condition: unknown, message?: string): asserts condition {
  assert.ok(condition, message);
}
export { assert_ as assert };

export function assertMatch(actual: string, expected: RegExp, message?: string): void {
  assert.match(actual, expected, message);
}

export function assertStringIncludes(actual: string, expected: string, message?: string): void {
  if (!actual.includes(expected)) {
    throw new assert.AssertionError({
      message: message ??
        `Expected ${JSON.stringify(actual)} to include ${JSON.stringify(expected)}`,
      actual,
      expected,
    });
  }
}

// deno-lint-ignore no-explicit-any
type ErrorClass<E extends Error> = new (...args: any[]) => E;

export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  errorClass?: ErrorClass<E>,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    checkError(error, errorClass, includes);
    return error as E;
  }
  throw new assert.AssertionError({ message: "Expected function to reject" });
}

export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  errorClass?: ErrorClass<E>,
  includes?: string,
): E {
  try {
    fn();
  } catch (error) {
    checkError(error, errorClass, includes);
    return error as E;
  }
  throw new assert.AssertionError({ message: "Expected function to throw" });
}

function checkError<E extends Error>(
  error: unknown,
  errorClass?: ErrorClass<E>,
  includes?: string,
): void {
  if (errorClass !== undefined && !(error instanceof errorClass)) {
    throw new assert.AssertionError({
      message: `Expected error to be ${errorClass.name}, got ${String(error)}`,
    });
  }
  if (includes !== undefined && !(error instanceof Error && error.message.includes(includes))) {
    throw new assert.AssertionError({
      message: `Expected error message to include ${JSON.stringify(includes)}, got ${
        JSON.stringify((error as Error).message)
      }`,
    });
  }
}
