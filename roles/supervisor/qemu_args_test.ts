import { assertEquals, assertStringIncludes, assertThrows } from "../../lib/testing/asserts.ts";
import { HostStartError } from "./host_driver.ts";
import { expandQemuArgs, templateAttachesDisk } from "./qemu_args.ts";

Deno.test("expandQemuArgs() fills every placeholder, several per argument", () => {
  assertEquals(
    expandQemuArgs(
      ["-name", "tml-{job_id}", "-device", "usb-host,hostbus={bus},hostaddr={addr}", "-m", "512"],
      { job_id: "j1", bus: "3", addr: "7" },
    ),
    ["-name", "tml-j1", "-device", "usb-host,hostbus=3,hostaddr=7", "-m", "512"],
  );
});

Deno.test("expandQemuArgs() names an unknown variable and the known ones", () => {
  const error = assertThrows(
    () => expandQemuArgs(["file={disk}"], { job_id: "j1", main_disk_image: "/d" }),
    HostStartError,
  );
  assertStringIncludes(error.message, 'unknown variable "{disk}"');
  assertStringIncludes(error.message, "{job_id}, {main_disk_image}");
});

Deno.test("templateAttachesDisk() says whether the site places the disk itself", () => {
  assertEquals(templateAttachesDisk(["-drive", "file={main_disk_image},if=ide"]), true);
  assertEquals(templateAttachesDisk(["-m", "512"]), false);
});
