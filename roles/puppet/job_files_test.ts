import { assert, assertEquals } from "../../lib/testing/asserts.ts";
import type { PuppetJob } from "../../lib/protocol/puppet.ts";
import { lookupUser, writeJobFiles } from "./job_files.ts";

const JOB: PuppetJob = {
  job_id: "5b0e8f4c-3c1a-4e7d-8f2b-6a9d0c1e2f34",
  parameters: {
    "gh-actions-runner-encoded-jit-config": { value: "s3cret\nwith lines\n", secret: true },
    plain: { value: "hello", secret: false },
    empty: { value: "", secret: false },
  },
  ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBy1 dev@laptop"],
  workload: null,
};

function mode(path: string): number {
  return Deno.statSync(path).mode! & 0o777;
}

Deno.test("writeJobFiles() writes each parameter exactly, secret ones 0600 and others 0644", async () => {
  const root = await Deno.makeTempDir();
  try {
    // A umask that would otherwise leave files group-writable must not change the modes.
    const previous = Deno.umask(0o002);
    try {
      await writeJobFiles(JOB, { root, authorizedKeys: `${root}/authorized_keys` });
    } finally {
      Deno.umask(previous);
    }
    assertEquals(await Deno.readTextFile(`${root}/job-id`), JOB.job_id);
    const secret = `${root}/parameters/gh-actions-runner-encoded-jit-config`;
    assertEquals(await Deno.readTextFile(secret), "s3cret\nwith lines\n");
    assertEquals(mode(secret), 0o600);
    assertEquals(await Deno.readTextFile(`${root}/parameters/plain`), "hello");
    assertEquals(mode(`${root}/parameters/plain`), 0o644);
    assertEquals(await Deno.readTextFile(`${root}/parameters/empty`), "");
    assertEquals(mode(`${root}/parameters`), 0o755);
    assertEquals(
      [...Deno.readDirSync(`${root}/parameters`)].map((e) => e.name).sort(),
      ["empty", "gh-actions-runner-encoded-jit-config", "plain"],
      "temporary files were left behind",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("writeJobFiles() run again gives the same files and drops parameters no longer given", async () => {
  const root = await Deno.makeTempDir();
  try {
    await writeJobFiles(JOB, { root, authorizedKeys: `${root}/authorized_keys` });
    const { empty: _, ...fewer } = JOB.parameters;
    await writeJobFiles({ ...JOB, parameters: fewer }, {
      root,
      authorizedKeys: `${root}/authorized_keys`,
    });
    assertEquals(
      [...Deno.readDirSync(`${root}/parameters`)].map((e) => e.name).sort(),
      ["gh-actions-runner-encoded-jit-config", "plain"],
    );
    assertEquals(mode(`${root}/parameters/gh-actions-runner-encoded-jit-config`), 0o600);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("writeJobFiles() keeps an image's own authorized keys and replaces only tml's block", async () => {
  const root = await Deno.makeTempDir();
  const keys = `${root}/home/tml/.ssh/authorized_keys`;
  try {
    await Deno.mkdir(`${root}/home/tml/.ssh`, { recursive: true });
    await Deno.writeTextFile(keys, "ssh-rsa AAAAB3NzaC1yc2E image-admin\n");
    await writeJobFiles(JOB, { root, authorizedKeys: keys });
    await writeJobFiles({ ...JOB, ssh_keys: ["ssh-ed25519 AAAAnewkey second@job"] }, {
      root,
      authorizedKeys: keys,
    });
    const text = await Deno.readTextFile(keys);
    assert(text.startsWith("ssh-rsa AAAAB3NzaC1yc2E image-admin\n"), text);
    assert(text.includes("ssh-ed25519 AAAAnewkey second@job\n"), text);
    assert(!text.includes("dev@laptop"), "the previous job's key is still there");
    assertEquals(text.split("# BEGIN tml job keys").length, 2);
    assertEquals(mode(keys), 0o600);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name: "writeJobFiles() gives secret files and the keys to the SSH user when running as root",
  ignore: Deno.uid() !== 0,
  async fn() {
    const root = await Deno.makeTempDir();
    try {
      const owner = { uid: 4242, gid: 4343 };
      await writeJobFiles(JOB, { root, authorizedKeys: `${root}/keys/authorized_keys`, owner });
      const secret = Deno.statSync(`${root}/parameters/gh-actions-runner-encoded-jit-config`);
      assertEquals([secret.uid, secret.gid], [4242, 4343]);
      const plain = Deno.statSync(`${root}/parameters/plain`);
      assertEquals(plain.uid, 0, "a public parameter should stay root's");
      assertEquals(Deno.statSync(`${root}/keys/authorized_keys`).uid, 4242);
      assertEquals(Deno.statSync(`${root}/keys`).uid, 4242);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("lookupUser() reads uid, gid and home from a passwd file", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(
      file,
      "root:x:0:0:root:/root:/bin/sh\ntml:x:1001:1002:tml user:/home/tml:/bin/sh\n",
    );
    assertEquals(await lookupUser("tml", file), { uid: 1001, gid: 1002, home: "/home/tml" });
    assertEquals(await lookupUser("nobody-here", file), undefined);
  } finally {
    await Deno.remove(file);
  }
});
