/**
 * The UEFI guest for tests that boot a Treadmill-style UEFI disk image: built once per machine
 * by the recipe in images/uefi_guest (cached under .cache/uefi-guest).
 */
import { buildUefiGuest } from "../../images/uefi_guest/build.ts";
import type { TestGuest } from "../../images/test_guest/build.ts";

let building: Promise<TestGuest> | undefined;

/** The UEFI guest image (built on first use in this process, else reused from the cache). */
export function uefiGuest(): Promise<TestGuest> {
  building ??= buildUefiGuest();
  building.catch(() => (building = undefined));
  return building;
}
