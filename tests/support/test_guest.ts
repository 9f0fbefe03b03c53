/**
 * The test guest for tests that boot real VMs: built once per machine by the recipe in
 * images/test_guest (cached under .cache/test-guest).
 */
import { buildTestGuest, type TestGuest } from "../../images/test_guest/build.ts";

let building: Promise<TestGuest> | undefined;

/** The test guest image (built on first use in this process, else reused from the cache). */
export function testGuest(): Promise<TestGuest> {
  building ??= buildTestGuest();
  building.catch(() => (building = undefined));
  return building;
}
