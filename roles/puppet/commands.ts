/** Declares `tml puppet` and `tml puppet finish|terminate`; the code loads when one runs. */
import type { Command } from "commander";
import { parseDuration } from "../../lib/duration.ts";
import { PUPPET_FW_CFG_SECRET, PUPPET_VIRTIO_PORT_NAME } from "../../lib/protocol/puppet.ts";

const DEFAULT_ROOT = "/run/tml";

function rootOption(command: Command): Command {
  return command.option(
    "--root <dir>",
    `the puppet's root (TML_PUPPET_ROOT, default ${DEFAULT_ROOT})`,
  );
}

function rootOf(...candidates: Array<string | undefined>): string {
  return candidates.find((root) => root !== undefined) ?? Deno.env.get("TML_PUPPET_ROOT") ??
    DEFAULT_ROOT;
}

export function registerPuppetCommands(program: Command): void {
  const puppet = rootOption(
    program.command("puppet")
      .description("the agent inside a job's host: job files, workload, result")
      .option(
        "--channel <spec>",
        "supervisor channel: tcp:HOST:PORT, unix:PATH or file:DEVICE (TML_PUPPET_CHANNEL; " +
          `default: the virtio-serial port "${PUPPET_VIRTIO_PORT_NAME}")`,
      )
      .option(
        "--secret-file <file>",
        `file holding the per-job secret (else TML_PUPPET_SECRET, else fw_cfg "${PUPPET_FW_CFG_SECRET}")`,
      ),
  )
    .option("--ssh-user <name>", "user whose authorized_keys get the job's SSH keys", "tml")
    .option(
      "--authorized-keys <file>",
      "where the job's SSH keys go (default: ~SSH_USER/.ssh/authorized_keys when running as " +
        "root and that user exists, else ROOT/authorized_keys)",
    )
    .option("--workdir <dir>", "the workload's working directory (default ROOT/work)")
    .option("--reconnect-timeout <duration>", "how long to try to reach the supervisor", "5m")
    .option("--stop-grace <duration>", "time the workload gets between SIGTERM and SIGKILL", "5s")
    .option(
      "--no-echo",
      "do not copy the workload's output to this process's stdout/stderr (the supervisor " +
        "gets it either way; a VM's init uses this so the serial console does not repeat it)",
    )
    .addHelpText(
      "after",
      `
The puppet writes ROOT/job-id and ROOT/parameters/<name> (secret parameters mode 0600), reports
ready, runs the job's workload with /bin/sh -c (environment: TML_JOB_ID, TML_PARAMETERS_DIR,
TML_PUPPET_ROOT) and reports its exit code. A workload that runs by itself reports with
\`tml puppet finish\`.

Examples:
  tml puppet                                    # in a VM: channel and secret found by itself
  tml puppet --channel tcp:10.0.2.2:7200 --secret-file /run/tml-secret
  tml puppet finish --success --message "all 42 tests passed"
  tml puppet terminate`,
    )
    .action(async (options) => {
      const { startPuppet } = await import("./start.ts");
      await startPuppet({
        channel: options.channel,
        secretFile: options.secretFile,
        root: rootOf(options.root),
        controlSocket: options.controlSocket,
        sshUser: options.sshUser,
        authorizedKeys: options.authorizedKeys,
        workdir: options.workdir,
        reconnectTimeoutMs: parseDuration(options.reconnectTimeout, "reconnect-timeout"),
        stopGraceMs: parseDuration(options.stopGrace, "stop-grace"),
        echo: options.echo,
      });
    });

  // commander hands `--root` and `--control-socket` to the parent command wherever they appear,
  // so a subcommand looks at both.
  const socketOf = (options: { root?: string; controlSocket?: string }) =>
    import("./start.ts").then(({ controlSocketOf }) =>
      controlSocketOf(
        rootOf(options.root, puppet.opts().root),
        options.controlSocket ?? puppet.opts().controlSocket,
      )
    );
  rootOption(puppet.command("finish"))
    .description("report the workload's result (for workloads the puppet did not start)")
    .option("--success", "the workload succeeded")
    .option("--error", "the workload failed")
    .option("--unknown", "the workload ended without success or failure")
    .option("--message <text>", "information for the user")
    .addHelpText(
      "after",
      `
Examples:
  tml puppet finish --success
  tml puppet finish --error --message "flashing failed"`,
    )
    .action(async (options) => {
      const { finishCommand } = await import("./start.ts");
      await finishCommand(await socketOf(options), options);
    });

  rootOption(puppet.command("terminate"))
    .description("end the job now")
    .addHelpText("after", "\nExample:\n  tml puppet terminate")
    .action(async (options) => {
      const { sendToPuppet } = await import("./control_socket.ts");
      await sendToPuppet(await socketOf(options), { type: "terminate_request" });
    });
}
