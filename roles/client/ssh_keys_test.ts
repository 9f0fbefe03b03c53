import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
} from "../../lib/testing/asserts.ts";
import { TmlError } from "../../lib/errors.ts";
import { collectSshKeys, ensureTmlKey } from "./ssh_keys.ts";

const KEY_A =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA a@host";
const KEY_B = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== b@host";
const KEY_C = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= c@host";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tml-ssh-keys-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function writeHomeKeys(home: string): Promise<void> {
  await Deno.mkdir(`${home}/.ssh`);
  await Deno.writeTextFile(`${home}/.ssh/id_rsa.pub`, `${KEY_B}\n`);
  await Deno.writeTextFile(
    `${home}/.ssh/id_ed25519-cert.pub`,
    "ssh-ed25519-cert-v01@openssh.com AAAA x\n",
  );
  await Deno.writeTextFile(`${home}/.ssh/notes.pub`, "not a key\n");
  await Deno.writeTextFile(`${home}/.ssh/id_rsa`, "PRIVATE\n");
}

Deno.test("collectSshKeys() uses --ssh-key values alone, plus tml's own key", async () => {
  await withDir(async (dir) => {
    await writeHomeKeys(dir);
    const keys = await collectSshKeys({
      given: [KEY_A, ` ${KEY_A} `],
      configured: [KEY_C],
      home: dir,
      tmlKeyDir: `${dir}/tml/ssh`,
      warn: () => {},
    });
    assertEquals(keys.length, 2);
    assertEquals(keys[0], KEY_A);
    assertEquals(keys[1], (await Deno.readTextFile(`${dir}/tml/ssh/id_ed25519.pub`)).trim());
  });
});

Deno.test("collectSshKeys() without --ssh-key takes the config's keys and ~/.ssh/*.pub", async () => {
  await withDir(async (dir) => {
    await writeHomeKeys(dir);
    const keys = await collectSshKeys({
      given: [],
      configured: [KEY_C],
      home: dir,
      tmlKeyDir: `${dir}/tml/ssh`,
      warn: () => {},
    });
    assertEquals(keys.slice(0, 2), [KEY_C, KEY_B]);
    assertEquals(keys.length, 3);
    assertStringIncludes(keys[2], "ssh-ed25519 ");
  });
});

Deno.test("collectSshKeys() refuses a --ssh-key that is not a public key line", async () => {
  await withDir(async (dir) => {
    const error = await assertRejects(
      () =>
        collectSshKeys({
          given: ["-----BEGIN OPENSSH PRIVATE KEY-----"],
          configured: [],
          home: dir,
          tmlKeyDir: `${dir}/ssh`,
          warn: () => {},
        }),
      TmlError,
      "--ssh-key: expected one OpenSSH public key line",
    );
    assertEquals(error.status, 400);
  });
});

Deno.test("ensureTmlKey() makes the key pair once, private key readable only by its owner", async () => {
  await withDir(async (dir) => {
    const first = await ensureTmlKey(`${dir}/ssh`, () => {});
    assert(first !== undefined);
    assertMatchKey(first);
    assertEquals((await Deno.stat(`${dir}/ssh/id_ed25519`)).mode! & 0o777, 0o600);
    assertEquals(await ensureTmlKey(`${dir}/ssh`, () => {}), first);
    const entries = [];
    for await (const entry of Deno.readDir(`${dir}/ssh`)) entries.push(entry.name);
    assertEquals(entries.sort(), ["id_ed25519", "id_ed25519.pub"]);
  });
});

function assertMatchKey(key: string): void {
  assert(/^ssh-ed25519 [A-Za-z0-9+/=]+ tml$/.test(key), key);
}

Deno.test("ensureTmlKey() racing on first use ends with one pair that matches", async () => {
  await withDir(async (dir) => {
    const keys = await Promise.all(
      Array.from({ length: 4 }, () => ensureTmlKey(`${dir}/ssh`, () => {})),
    );
    assertEquals(new Set(keys).size, 1);
    const derived = await new Deno.Command("ssh-keygen", {
      args: ["-y", "-f", `${dir}/ssh/id_ed25519`],
      stdout: "piped",
    }).output();
    const publicPart = new TextDecoder().decode(derived.stdout).trim().split(" ").slice(0, 2);
    assertEquals(keys[0]!.split(" ").slice(0, 2), publicPart);
  });
});

Deno.test("ensureTmlKey() without ssh-keygen warns and goes on without a key", async () => {
  await withDir(async (dir) => {
    const warnings: string[] = [];
    const key = await ensureTmlKey(
      `${dir}/ssh`,
      (message) => warnings.push(message),
      `${dir}/no-such-ssh-keygen`,
    );
    assertEquals(key, undefined);
    assertEquals(warnings.length, 1);
    assertStringIncludes(warnings[0], "ssh-keygen not found");
  });
});
