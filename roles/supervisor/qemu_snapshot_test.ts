import { assertEquals, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { defaultQemuArgs } from "./qemu_args.ts";
import { guestRamBytes, resumeArgs, resumedSnapshotDir } from "./qemu_snapshot.ts";

Deno.test("guestRamBytes reads -m as QEMU does: MiB by default, a suffix, size=, the last one", () => {
  assertEquals(guestRamBytes(defaultQemuArgs()), 512 * 2 ** 20);
  assertEquals(guestRamBytes(["-m", "2G"]), 2 * 2 ** 30);
  assertEquals(guestRamBytes(["-m", "size=1536M"]), 1536 * 2 ** 20);
  assertEquals(guestRamBytes(["-m", "1.5g"]), 1.5 * 2 ** 30);
  assertEquals(guestRamBytes(["-m", "256", "-smp", "2", "-m", "1024"]), 2 ** 30);
  assertEquals(guestRamBytes(["--m", "64"]), 64 * 2 ** 20);
  assertEquals(guestRamBytes(["-m", "536870912B"]), 512 * 2 ** 20);
});

Deno.test("guestRamBytes says why a machine's RAM cannot go in a snapshot file", () => {
  const refusals: [string[], string][] = [
    [["-smp", "1"], "no -m"],
    [["-m", "1G,slots=2,maxmem=4G"], "not a plain size"],
    [["-m", "2GB"], "not a plain size"],
    [["-m", "512", "-mem-path", "/dev/hugepages"], "-mem-path /dev/hugepages"],
    [["-m", "1G", "-object", "memory-backend-ram,id=m,size=1G"], "memory-backend-ram"],
    [["-m", "1G", "-machine", "q35,memory-backend=m"], "memory-backend=m"],
    [["-m", "1G", "-numa", "node,memdev=m"], "-numa"],
  ];
  for (const [args, reason] of refusals) {
    const refusal = guestRamBytes(args);
    assertEquals(typeof refusal, "string", args.join(" "));
    assertStringIncludes(refusal as string, reason);
  }
});

Deno.test("resumedSnapshotDir finds the snapshot in the arguments resumeArgs made", () => {
  for (const dir of ["/var/lib/tml/snapshots/0123abcd", "/srv/a,b/snapshots/k"]) {
    const args = ["-m", "512", ...resumeArgs({ key: "k", dir, ramBytes: 512 * 2 ** 20 })];
    assertEquals(resumedSnapshotDir(args), dir);
  }
  assertEquals(resumedSnapshotDir(["-m", "512"]), undefined);
});
