import { assertEquals, assertThrows } from "../../lib/testing/asserts.ts";
import { Command } from "commander";
import { ClientError } from "../../lib/client/errors.ts";
import { sshArguments } from "./job_ssh.ts";
import { registerJobRendezvousCommands } from "./rendezvous_commands.ts";
import { parseForward, parsePort } from "./rendezvous_ports.ts";

Deno.test("registerJobRendezvousCommands() passes what follows -- to ssh as the remote command", async () => {
  const program = new Command("tml");
  const job = program.command("job");
  registerJobRendezvousCommands(job);
  let seen: unknown[] = [];
  job.commands.find((c) => c.name() === "ssh")!.action((...args: unknown[]) => {
    seen = args.slice(0, 3);
  });
  await program.parseAsync(
    ["job", "ssh", "-l", "root", "JOB", "-o", "A=1", "--", "echo", "-n", "ok"],
    { from: "user" },
  );
  assertEquals(seen, ["JOB", ["echo", "-n", "ok"], { login: "root", sshOption: ["A=1"] }]);
});

Deno.test("sshArguments() tunnels through the proxy command, quoted for the shell", () => {
  const args = sshArguments({
    jobId: "j1",
    port: 22,
    login: "tml",
    proxyCommand: [
      "/opt/deno",
      "run",
      "-A",
      "/src/it's/main.ts",
      "rendezvous",
      "connect",
      "j1",
      "22",
    ],
    tmlKey: "/home/u/.config/tml/ssh/id_ed25519",
    options: ["ServerAliveInterval=30"],
    remoteCommand: ["echo", "ok"],
  });
  assertEquals(args, [
    "-o",
    "ProxyCommand=/opt/deno run -A '/src/it'\\''s/main.ts' rendezvous connect j1 22",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "LogLevel=ERROR",
    "-i",
    "/home/u/.config/tml/ssh/id_ed25519",
    "-o",
    "ServerAliveInterval=30",
    "-l",
    "tml",
    "tml-job-j1-22",
    "--",
    "echo",
    "ok",
  ]);
});

Deno.test("parseForward() reads LOCAL:REMOTE or one port, and names the bad part", () => {
  assertEquals(parseForward("8080:80"), { local: 8080, remote: 80 });
  assertEquals(parseForward("5432"), { local: 5432, remote: 5432 });
  const error = assertThrows(() => parseForward("8080:99999"), ClientError);
  assertEquals(error.field, "REMOTE_PORT");
  assertEquals(error.status, 400);
  assertThrows(() => parseForward("1:2:3"), ClientError, "expected two ports");
  assertThrows(() => parsePort("0", "PORT"), ClientError, 'got "0"');
  assertThrows(() => parsePort("ssh", "PORT"), ClientError, 'got "ssh"');
});
