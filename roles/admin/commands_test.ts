import { Command } from "commander";
import { assert, assertEquals } from "../../lib/testing/asserts.ts";
import { registerAdminCommands } from "./commands.ts";

Deno.test("registerAdminCommands() gives every admin command help with an example", () => {
  const program = new Command("tml");
  registerAdminCommands(program);
  const leaves: Command[] = [];
  const walk = (command: Command) => {
    if (command.commands.length === 0) leaves.push(command);
    command.commands.forEach(walk);
  };
  walk(program);
  const names = leaves.map((command) => `${command.parent!.name()} ${command.name()}`);
  assertEquals(names.sort(), [
    "supervisor list",
    "supervisor register",
    "supervisor remove",
    "supervisor rotate-token",
    "user create",
    "user grant",
    "user list",
    "user lock",
    "user revoke",
    "user set-password",
    "user unlock",
  ]);
  for (const command of leaves) {
    let help = "";
    command.configureOutput({ writeOut: (text) => (help += text) });
    command.outputHelp();
    const name = `${command.parent!.name()} ${command.name()}`;
    assert(
      help.includes("Example:\n  ") && help.includes(`tml admin ${name}`),
      `${name}:\n${help}`,
    );
  }
});
