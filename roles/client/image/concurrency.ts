/** Bounded concurrency for the commands that fetch blobs: the flag, and a task pool. */
import { ImageCommandError } from "./errors.ts";

export function parseConcurrency(value: string | undefined): number {
  if (value === undefined) return 4;
  if (!/^\d{1,2}$/.test(value) || Number(value) < 1 || Number(value) > 64) {
    throw new ImageCommandError(
      "invalid_concurrency",
      `Invalid --concurrency: expected an integer from 1 to 64, got "${value}"`,
      { field: "concurrency" },
    );
  }
  return Number(value);
}

/** Runs `task` on every item, at most `limit` at once; the first failure stops new starts. */
export async function eachLimited<T>(
  items: Iterable<T>,
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  const queue = [...items];
  let failed = false;
  const worker = async () => {
    while (!failed && queue.length > 0) {
      try {
        await task(queue.shift()!);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const results = await Promise.allSettled(
    Array.from({ length: Math.min(limit, queue.length) }, worker),
  );
  const rejected = results.find((result) => result.status === "rejected");
  if (rejected !== undefined) throw rejected.reason;
}
