/** Declares `tml puppet` and `tml puppet finish|terminate`; the code loads when one runs. */
import type { Command } from "commander";
import { TmlError } from "../../lib/errors.ts";

export function registerPuppetCommands(program: Command): void {
  const puppet = program.command("puppet")
    .description("the agent inside a job's host: job files, workload, result")
    .option(
      "--channel <spec>",
      "supervisor channel: tcp:HOST:PORT, unix:PATH or file:DEVICE (TML_PUPPET_CHANNEL)",
    )
    .option("--secret-file <file>", "file holding the per-job secret (else TML_PUPPET_SECRET)")
    .option("--root <dir>", "where job files go (TML_PUPPET_ROOT, default /run/tml)")
    .option(
      "--authorized-keys <file>",
      "where the job's SSH keys go (default ~tml/.ssh/authorized_keys)",
    )
    .option("--heartbeat <ms>", "heartbeat interval in ms", "3000")
    .addHelpText(
      "after",
      `
Examples:
  tml puppet --channel tcp:10.0.2.2:7200 --secret-file /run/tml-secret
  tml puppet finish --success --message "all 42 tests passed"
  tml puppet terminate`,
    )
    .action(async (options) => {
      const channel = options.channel ?? Deno.env.get("TML_PUPPET_CHANNEL");
      if (channel === undefined) {
        throw new TmlError(
          "missing_channel",
          "Missing --channel: give tcp:HOST:PORT, unix:PATH or file:DEVICE",
          { status: 400, field: "channel" },
        );
      }
      const secret = options.secretFile !== undefined
        ? (await Deno.readTextFile(options.secretFile)).trim()
        : Deno.env.get("TML_PUPPET_SECRET");
      if (secret === undefined || secret === "") {
        throw new TmlError(
          "missing_secret",
          "Missing per-job secret: give --secret-file or TML_PUPPET_SECRET",
          { status: 400, field: "secret-file" },
        );
      }
      const { runPuppet } = await import("./puppet.ts");
      await runPuppet({
        channel,
        secret,
        root: options.root ?? Deno.env.get("TML_PUPPET_ROOT") ?? "/run/tml",
        authorizedKeys: options.authorizedKeys,
        heartbeatMs: Number(options.heartbeat),
      });
    });

  // `--root` exists on `puppet` too, and commander gives an option to the parent wherever it
  // appears, so a subcommand looks at both.
  const rootOf = (options: { root?: string }) =>
    options.root ?? puppet.opts().root ?? Deno.env.get("TML_PUPPET_ROOT") ?? "/run/tml";

  puppet.command("finish")
    .description("report the workload's result (for workloads the puppet did not start)")
    .option("--success", "the workload succeeded")
    .option("--error", "the workload failed")
    .option("--unknown", "the workload ended without success or failure")
    .option("--message <text>", "information for the user")
    .option("--root <dir>", "the puppet's root (TML_PUPPET_ROOT, default /run/tml)")
    .addHelpText("after", '\nExample:\n  tml puppet finish --error --message "flashing failed"')
    .action(async (options) => {
      const chosen = (["success", "error", "unknown"] as const).filter((o) => options[o] === true);
      if (chosen.length !== 1) {
        throw new TmlError("invalid_outcome", "Give exactly one of --success, --error, --unknown", {
          status: 400,
        });
      }
      const { sendToPuppet } = await import("./control_socket.ts");
      await sendToPuppet(rootOf(options), {
        type: "workload_finished",
        outcome: chosen[0],
        message: options.message,
      });
    });

  puppet.command("terminate")
    .description("end the job now")
    .option("--root <dir>", "the puppet's root (TML_PUPPET_ROOT, default /run/tml)")
    .action(async (options) => {
      const { sendToPuppet } = await import("./control_socket.ts");
      await sendToPuppet(rootOf(options), { type: "terminate_request" });
    });
}
