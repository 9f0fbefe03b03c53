/** Declares `tml login`, `tml logout`, `tml whoami` and `tml token create|list|revoke`. */
import type { Command } from "commander";
import { collect, JSON_HELP } from "./flags.ts";

const loginCode = () => import("./login.ts");
const tokenCode = () => import("./tokens.ts");

export function registerAccountCommands(program: Command): void {
  program.command("login")
    .description("log in and store a token for this switchboard")
    .argument("[user]", "user name or email (TML_USER; else a prompt)")
    .argument("[password]", "password (TML_PASSWORD; else --password-stdin or a hidden prompt)")
    .option("--password-stdin", "read the password from standard input")
    .option("--expires-in <duration>", "token lifetime, e.g. 30d (default 7d, at most 365d)")
    .addHelpText(
      "after",
      `
The token is stored for the API URL in ~/.config/tml/credentials.json (mode 0600);
TML_API_TOKEN, when set, takes precedence over it.

Examples:
  tml login alice
  echo "$PASSWORD" | tml login alice --password-stdin
  TML_USER=alice@example.org TML_PASSWORD=... tml --api-url https://tml.example.org login`,
    )
    .action(async (user, password, options, command) =>
      await (await loginCode()).login(user, password, options, command)
    );

  program.command("logout")
    .description("revoke and forget the stored token for this switchboard")
    .addHelpText("after", "\nExample:\n  tml logout")
    .action(async (_options, command) => await (await loginCode()).logout(command));

  program.command("whoami")
    .description("show the user and permissions of the token in use")
    .option("--json", JSON_HELP)
    .addHelpText("after", "\nExample:\n  TML_API_TOKEN=... tml whoami --json")
    .action(async (options, command) => await (await loginCode()).whoami(options, command));

  const token = program.command("token").description("create, list and revoke your API tokens");
  token.command("create")
    .description("create a token; prints it once, as JSON")
    .option("--expires-in <duration>", "lifetime, e.g. 90d (default 30d, at most 365d)")
    .option(
      "--permission <permission>",
      "limit the token to this one of your permissions (repeatable)",
      collect,
    )
    .option("--description <text>", "what the token is for")
    .addHelpText(
      "after",
      `
Examples:
  tml token create --expires-in 90d --permission submit_job --description 'CI on main'
  TML_API_TOKEN=$(tml token create --expires-in 1d | jq -r .token)`,
    )
    .action(async (options, command) => await (await tokenCode()).create(options, command));
  token.command("list")
    .description("list your tokens (never their secrets)")
    .option("--json", JSON_HELP)
    .addHelpText("after", "\nExample:\n  tml token list")
    .action(async (options, command) => await (await tokenCode()).list(options, command));
  token.command("revoke")
    .description("revoke a token at once")
    .argument("<token-id>", "the token's id, from tml token list")
    .addHelpText("after", "\nExample:\n  tml token revoke 8b1d2c3e-4f50-4a61-8b72-9c8d7e6f5a4b")
    .action(async (tokenId, _options, command) =>
      await (await tokenCode()).revoke(tokenId, command)
    );
}
