import { assertEquals, assertRejects, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { ConfigError } from "../../lib/config.ts";
import { loadSupervisorConfig } from "./config.ts";
import { QemuSupervisorConfig } from "./qemu_config.ts";

const ID = "4d3c2b1a-0f9e-4d8c-b7a6-958473625140";

async function withTokenFile(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/token`, "the-token\n");
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("QemuSupervisorConfig reads Treadmill's [qemu] keys from a TOML file", () =>
  withTokenFile(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/supervisor.toml`,
      [
        'switchboard = "http://127.0.0.1:7100"',
        `id = "${ID}"`,
        `token_file = "${dir}/token"`,
        'qemu_binary = "/opt/qemu/bin/qemu-system-x86_64"',
        'qemu_args = ["-m", "2048", "-device", "usb-host,hostbus={usb_bus},hostaddr={usb_addr}"]',
        'start_script = "/etc/tml/find-board.sh"',
        "working_disk_max_bytes = 8589934592",
      ].join("\n"),
    );
    const config = await loadSupervisorConfig(
      { file: `${dir}/supervisor.toml`, env: {}, flags: {} },
      QemuSupervisorConfig,
    );
    assertEquals(config.qemu_binary, "/opt/qemu/bin/qemu-system-x86_64");
    assertEquals(config.qemu_args, [
      "-m",
      "2048",
      "-device",
      "usb-host,hostbus={usb_bus},hostaddr={usb_addr}",
    ]);
    assertEquals(config.start_script, "/etc/tml/find-board.sh");
    assertEquals(config.working_disk_max_bytes, 8589934592);
  }));

Deno.test("QemuSupervisorConfig takes qemu_args from the environment as a JSON array", () =>
  withTokenFile(async (dir) => {
    const config = await loadSupervisorConfig({
      env: { TML_QEMU_ARGS: '["-smp", "2", "-name", "vm-{job_id}"]' },
      flags: { switchboard: "http://127.0.0.1:7100", id: ID, token_file: `${dir}/token` },
    }, QemuSupervisorConfig);
    assertEquals(config.qemu_args, ["-smp", "2", "-name", "vm-{job_id}"]);
  }));

Deno.test("QemuSupervisorConfig names the field and what it expected of bad qemu_args", () =>
  withTokenFile(async (dir) => {
    const flags = { switchboard: "http://127.0.0.1:7100", id: ID, token_file: `${dir}/token` };
    for (
      const [value, expected] of [
        ["-m 2048", "expected a JSON array of QEMU arguments"],
        ['["-name", "{Job-Id}"]', "expected template variables like {job_id}"],
        ["[]", "qemu_args"],
      ]
    ) {
      const error = await assertRejects(
        () =>
          loadSupervisorConfig(
            { env: {}, flags: { ...flags, qemu_args: value } },
            QemuSupervisorConfig,
          ),
        ConfigError,
      );
      assertStringIncludes(error.message, expected);
      assertStringIncludes(error.message, "--qemu-args");
    }
  }));
