import { assert, assertEquals, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { Command } from "commander";
import { registerClientCommands } from "./commands.ts";

function clientProgram(): Command {
  const program = new Command("tml");
  registerClientCommands(program, program.command("supervisor"), program.command("rendezvous"));
  return program;
}

/** Leaf commands with their full names, e.g. "job enqueue". */
function leaves(command: Command, prefix = ""): Array<[string, Command]> {
  const name = `${prefix}${command.name()}`;
  if (command.commands.length === 0) return [[name, command]];
  return command.commands.flatMap((child) =>
    leaves(child, prefix === "" && name === "tml" ? "" : `${name} `)
  );
}

function helpOf(command: Command): string {
  let text = "";
  command.configureOutput({ writeOut: (chunk) => (text += chunk), writeErr: () => {} });
  command.outputHelp();
  return text;
}

const CLIENT_COMMANDS = [
  "login",
  "logout",
  "whoami",
  "token create",
  "token list",
  "token revoke",
  "job enqueue",
  "job show",
  "job list",
  "job history",
  "job logs",
  "job cancel",
  "job wait",
  "job ssh",
  "job forward",
  "rendezvous connect",
  "supervisor list",
  "supervisor show",
];

Deno.test("registerClientCommands() declares every client command with examples", () => {
  const commands = new Map(leaves(clientProgram()));
  for (const name of CLIENT_COMMANDS) {
    const command = commands.get(name);
    assert(command !== undefined, `tml ${name} is declared`);
    assertStringIncludes(helpOf(command), "Example", `tml ${name} has examples`);
  }
});

Deno.test("registerClientCommands() names the environment variable of each flag that has one", () => {
  const program = clientProgram();
  const commands = new Map(leaves(program));
  assertStringIncludes(
    program.options.find((o) => o.long === "--api-url")!.description,
    "TML_API_URL",
  );
  for (const name of CLIENT_COMMANDS) {
    const json = commands.get(name)!.options.find((option) => option.long === "--json");
    if (json !== undefined) assertStringIncludes(json.description, "TML_OUTPUT", name);
  }
  const login = helpOf(commands.get("login")!);
  assertStringIncludes(login, "TML_USER");
  assertStringIncludes(login, "TML_PASSWORD");
  const enqueue = helpOf(commands.get("job enqueue")!);
  assertStringIncludes(enqueue, "TML_SSH_KEYS");
  assertStringIncludes(enqueue, "TML_API_TOKEN");
});

Deno.test("registerClientCommands() collects repeatable flags without swallowing the image id", async () => {
  const program = clientProgram();
  let seen: { imageId: string; options: Record<string, unknown> } | undefined;
  const enqueue = program.commands.find((c) => c.name() === "job")!.commands.find((c) =>
    c.name() === "enqueue"
  )!;
  enqueue.action((imageId: string, options: Record<string, unknown>) => {
    seen = { imageId, options };
  });
  await program.parseAsync([
    "job",
    "enqueue",
    "--ssh-key",
    "ssh-ed25519 AAAA a",
    "--ssh-key",
    "ssh-ed25519 BBBB b",
    "IMAGE",
    "--parameter",
    "a=1",
    "--parameter",
    "b=2",
  ], { from: "user" });
  assertEquals(seen?.imageId, "IMAGE");
  assertEquals(seen?.options.sshKey, ["ssh-ed25519 AAAA a", "ssh-ed25519 BBBB b"]);
  assertEquals(seen?.options.parameter, ["a=1", "b=2"]);
});
