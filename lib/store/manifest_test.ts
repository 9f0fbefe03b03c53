import { assert, assertEquals, assertThrows } from "../testing/asserts.ts";
import { StoreError } from "./errors.ts";
import {
  BLOBS_MAX,
  DESCRIPTION_MAX_BYTES,
  imageIdOf,
  imageKindOf,
  type ImageManifest,
  kernelBootOf,
  LABEL_MAX_BYTES,
  MANIFEST_MAX_BYTES,
  manifestTotalSize,
  nbdLayers,
  parseManifest,
  qemuLayerChain,
  writeManifest,
} from "./manifest.ts";
import { sha256Bytes } from "./sha256.ts";

const FIXTURES = new URL("../../tests/fixtures/manifests/", import.meta.url);

function fixture(name: string): string {
  return Deno.readTextFileSync(new URL(name, FIXTURES));
}

const LABEL_KEY = '"org.tockos.treadmill.manifest-ext.base.label"';
const DESCRIPTION_KEY = '"org.tockos.treadmill.manifest-ext.base.description"';
const DIGEST = "cae662172fd450bb0cd710a769079c05bfc5d8e35efa6576edc7d0377afdd4a2";

/** The netboot fixture (one-line description) with its label line replaced. */
function withLabel(label: string): string {
  return fixture("netboot.toml").replace(
    /^"org[^\n]*base\.label" = .*$/m,
    `${LABEL_KEY} = "${label}"`,
  );
}

function withDescription(description: string): string {
  return fixture("netboot.toml").replace(
    /^"org[^\n]*base\.description" = .*$/m,
    `${DESCRIPTION_KEY} = "${description}"`,
  );
}

/** A manifest listing `count` blobs labelled by `labelOf`. */
function withBlobs(count: number, labelOf = (i: number) => `b${i}`): string {
  const lines = [
    "manifest_version = 0",
    'manifest_extensions = ["org.tockos.treadmill.manifest-ext.base"]',
    `${LABEL_KEY} = "many"`,
    '"org.tockos.treadmill.manifest-ext.base.revision" = 0',
    `${DESCRIPTION_KEY} = ""`,
  ];
  for (let i = 0; i < count; i++) {
    lines.push(
      `["org.tockos.treadmill.manifest-ext.base.blobs"."${labelOf(i)}"]`,
      `"org.tockos.treadmill.manifest-ext.base.sha256-digest" = "${DIGEST}"`,
      '"org.tockos.treadmill.manifest-ext.base.size" = 1',
    );
  }
  return lines.join("\n") + "\n";
}

function rejects(text: string | Uint8Array, includes: string): StoreError {
  const error = assertThrows(() => parseManifest(text), StoreError, includes);
  assertEquals(error.code, "invalid_manifest");
  assertEquals(error.status, 400);
  return error;
}

Deno.test("parseManifest() reads a Treadmill QEMU image manifest", () => {
  const m = parseManifest(new TextEncoder().encode(fixture("qemu_layered.toml")));
  assertEquals(m.label, "Ubuntu 22.04 with GitHub Actions Runner");
  assertEquals(m.revision, 1);
  assertEquals(
    m.description,
    "Base Ubuntu 22.04 installation with a GitHub Actions runner service.\nCredentials: root / root\n",
  );
  assertEquals(m.extensions, ["org.tockos.treadmill.manifest-ext.base"]);
  assertEquals(m.attrs, { "org.tockos.treadmill.image.qemu_layered_v0.head": "layer-1" });
  assertEquals(Object.keys(m.blobs), ["layer-0", "layer-1"]);
  assertEquals(m.blobs["layer-0"], {
    sha256: sha256Bytes("base"),
    size: 4,
    attrs: { "org.tockos.treadmill.image.qemu_layered_v0.blob-virtual-size": "5368709120" },
  });
  assertEquals(manifestTotalSize(m), 11);
  assertEquals(imageKindOf(m), "qemu");
});

Deno.test("qemuLayerChain() lists layers base first with virtual sizes and lowers", () => {
  const chain = qemuLayerChain(parseManifest(fixture("qemu_layered.toml")));
  assertEquals(chain, [
    { label: "layer-0", sha256: sha256Bytes("base"), size: 4, virtualSize: 5368709120 },
    {
      label: "layer-1",
      sha256: sha256Bytes("overlay"),
      size: 7,
      virtualSize: 10737418240,
      lower: "layer-0",
    },
  ]);
});

Deno.test("parseManifest() ignores unknown keys and extensions", () => {
  const m = parseManifest(fixture("netboot.toml"));
  assertEquals(m.extensions, [
    "org.tockos.treadmill.manifest-ext.base",
    "org.tockos.treadmill.manifest-ext.source",
  ]);
  assertEquals(m.blobs["layer-0-boot"], { sha256: sha256Bytes("boot"), size: 4, attrs: {} });
  assertEquals(imageKindOf(m), "nbd");
});

Deno.test("nbdLayers() finds the boot tar and the qcow2 root chain", () => {
  assertEquals(nbdLayers(parseManifest(fixture("netboot.toml"))), {
    boot: { label: "layer-0-boot", sha256: sha256Bytes("boot"), size: 4 },
    root: [{
      label: "layer-0-root",
      sha256: sha256Bytes("root"),
      size: 4,
      virtualSize: 8589934592,
    }],
  });
});

Deno.test("kernelBootOf() reads tml's kernel-boot attrs and is undefined without them", () => {
  const m = parseManifest(fixture("kernel_boot.toml"));
  assertEquals(kernelBootOf(m), {
    kernel: { label: "kernel", sha256: sha256Bytes("kernel"), size: 6 },
    initrd: { label: "initrd", sha256: sha256Bytes("initrd"), size: 6 },
    cmdline: "console=ttyS0 quiet",
  });
  assertEquals(qemuLayerChain(m).map((layer) => layer.label), ["root"]);
  assertEquals(kernelBootOf(parseManifest(fixture("qemu_layered.toml"))), undefined);
});

Deno.test("kernelBootOf() refuses a kernel attr naming a missing blob", () => {
  const m = parseManifest(fixture("kernel_boot.toml"));
  delete m.blobs.kernel;
  assertThrows(() => kernelBootOf(m), StoreError, 'names blob "kernel"');
  const noKernel = parseManifest(fixture("kernel_boot.toml"));
  delete noKernel.attrs["dev.tml.manifest-ext.kernel_boot.kernel"];
  assertThrows(() => kernelBootOf(noKernel), StoreError, "dev.tml.manifest-ext.kernel_boot.kernel");
});

Deno.test("imageIdOf() is the SHA-256 of the exact manifest bytes", () => {
  const bytes = new TextEncoder().encode(fixture("netboot.toml"));
  assertEquals(imageIdOf(bytes), sha256Bytes(bytes));
  const reformatted = new TextEncoder().encode(fixture("netboot.toml") + "\n");
  assert(imageIdOf(reformatted) !== imageIdOf(bytes));
});

Deno.test("writeManifest() output parses back to the same manifest", () => {
  for (const name of ["qemu_layered.toml", "netboot.toml", "kernel_boot.toml"]) {
    const m = parseManifest(fixture(name));
    assertEquals(parseManifest(writeManifest(m)), m);
  }
  const awkward: ImageManifest = {
    label: 'quotes " and \\ and é',
    revision: 7,
    description: "line\nnext\ttab \u0001 \u007f ''' \"\"\" end",
    attrs: { "a.b": "x", "weird key \u0000": "" },
    blobs: { only_one: { sha256: DIGEST, size: 0, attrs: { "k": "v" } } },
    extensions: ["org.tockos.treadmill.manifest-ext.base"],
  };
  assertEquals(parseManifest(writeManifest(awkward)), awkward);
});

Deno.test("writeManifest() writes every table Treadmill's reader requires, even empty", () => {
  const bare: ImageManifest = {
    label: "bare",
    revision: 0,
    description: "",
    attrs: {},
    blobs: {},
    extensions: ["org.tockos.treadmill.manifest-ext.base"],
  };
  assertEquals(
    new TextDecoder().decode(writeManifest(bare)),
    [
      "manifest_version = 0",
      'manifest_extensions = ["org.tockos.treadmill.manifest-ext.base"]',
      "",
      '"org.tockos.treadmill.manifest-ext.base.label" = "bare"',
      '"org.tockos.treadmill.manifest-ext.base.revision" = 0',
      '"org.tockos.treadmill.manifest-ext.base.description" = ""',
      "",
      '["org.tockos.treadmill.manifest-ext.base.attrs"]',
      "",
      '["org.tockos.treadmill.manifest-ext.base.blobs"]',
      "",
    ].join("\n"),
  );
  const withBlob = new TextDecoder().decode(writeManifest({
    ...bare,
    blobs: { disk: { sha256: DIGEST, size: 1, attrs: {} } },
  }));
  assert(
    withBlob.endsWith(
      '["org.tockos.treadmill.manifest-ext.base.blobs".disk]\n' +
        `"org.tockos.treadmill.manifest-ext.base.sha256-digest" = "${DIGEST}"\n` +
        '"org.tockos.treadmill.manifest-ext.base.size" = 1\n' +
        "\n" +
        '["org.tockos.treadmill.manifest-ext.base.blobs".disk."org.tockos.treadmill.manifest-ext.base.attrs"]\n',
    ),
    withBlob,
  );
});

Deno.test("writeManifest() refuses a manifest that breaks a limit", () => {
  const m = parseManifest(fixture("netboot.toml"));
  assertThrows(
    () => writeManifest({ ...m, label: "x".repeat(LABEL_MAX_BYTES + 1) }),
    StoreError,
    "base.label",
  );
});

Deno.test("manifestTotalSize() counts a blob listed under two labels once", () => {
  const m = parseManifest(fixture("qemu_layered.toml"));
  m.blobs["again"] = { ...m.blobs["layer-0"], attrs: {} };
  assertEquals(manifestTotalSize(m), 11);
});

Deno.test("parseManifest() errors read `key: problem (manifest)`", () => {
  const error = rejects(fixture("invalid/float_size.toml"), "float");
  assertEquals(
    error.message,
    'Cannot read image manifest: "org.tockos.treadmill.manifest-ext.base.blobs".layer-0.' +
      '"org.tockos.treadmill.manifest-ext.base.size": expected an integer, got float (manifest)',
  );
  const text = fixture("qemu_layered.toml").replace(
    '"org.tockos.treadmill.image.qemu_layered_v0.head" = "layer-1"',
    '"org.tockos.treadmill.image.qemu_layered_v0.head" = 1',
  );
  rejects(
    text,
    '"org.tockos.treadmill.manifest-ext.base.attrs"."org.tockos.treadmill.image.qemu_layered_v0.head": expected a string, got integer (manifest)',
  );
  rejects(
    fixture("netboot.toml").replace('base.revision" = 0', 'base.revision" = "0"'),
    '"org.tockos.treadmill.manifest-ext.base.revision": expected an integer, got string (manifest)',
  );
});

Deno.test("parseManifest() rejects each invalid fixture naming the key at fault", () => {
  const cases: Record<string, string> = {
    "uppercase_digest.toml":
      'blobs".layer-0."org.tockos.treadmill.manifest-ext.base.sha256-digest"',
    "float_size.toml": 'base.size": expected an integer, got float',
    "missing_size.toml": 'base.size": required',
    "missing_base_extension.toml": "manifest_extensions: must include",
    "unknown_version.toml": "manifest_version: expected 0",
    "bad_blob_label.toml": 'blobs"."layer.0": blob labels must match',
    "broken_toml.toml": "invalid TOML at line",
  };
  for (const [name, includes] of Object.entries(cases)) {
    rejects(fixture(`invalid/${name}`), includes);
  }
  const missingSize = rejects(fixture("invalid/missing_size.toml"), "required");
  assertEquals(
    missingSize.field,
    '"org.tockos.treadmill.manifest-ext.base.blobs".layer-0."org.tockos.treadmill.manifest-ext.base.size"',
  );
});

Deno.test("qemuLayerChain() and nbdLayers() reject broken layer graphs", () => {
  assertThrows(
    () => qemuLayerChain(parseManifest(fixture("invalid/qemu_layer_cycle.toml"))),
    StoreError,
    "(a cycle)",
  );
  assertThrows(
    () => qemuLayerChain(parseManifest(fixture("invalid/qemu_missing_lower.toml"))),
    StoreError,
    'qemu_layered_v0.lower": names blob "layer-0", which the manifest does not list',
  );
  assertThrows(
    () => nbdLayers(parseManifest(fixture("invalid/netboot_missing_boot.toml"))),
    StoreError,
    'names blob "layer-0-boot"',
  );
  assertThrows(
    () => qemuLayerChain(parseManifest(fixture("netboot.toml"))),
    StoreError,
    'qemu_layered_v0.head": required',
  );
  const m = parseManifest(fixture("qemu_layered.toml"));
  m.blobs["layer-0"].attrs["org.tockos.treadmill.image.qemu_layered_v0.blob-virtual-size"] = "5G";
  assertThrows(() => qemuLayerChain(m), StoreError, 'expected a size in bytes, got "5G"');
});

Deno.test("parseManifest() enforces the label limit in bytes", () => {
  assertEquals(parseManifest(withLabel("x".repeat(LABEL_MAX_BYTES))).label.length, 64);
  rejects(withLabel("x".repeat(LABEL_MAX_BYTES + 1)), 'base.label": must be at most 64 bytes');
  // 33 two-byte characters: under 64 characters, over 64 bytes.
  rejects(withLabel("é".repeat(33)), "must be at most 64 bytes");
});

Deno.test("parseManifest() enforces the description limit in bytes", () => {
  const longest = "d".repeat(DESCRIPTION_MAX_BYTES);
  assertEquals(parseManifest(withDescription(longest)).description, longest);
  rejects(
    withDescription(longest + "d"),
    `base.description": must be at most ${DESCRIPTION_MAX_BYTES} bytes`,
  );
});

Deno.test("parseManifest() enforces the blob count limit", () => {
  assertEquals(Object.keys(parseManifest(withBlobs(BLOBS_MAX)).blobs).length, BLOBS_MAX);
  rejects(withBlobs(BLOBS_MAX + 1), `must list at most ${BLOBS_MAX} blobs`);
});

Deno.test("parseManifest() enforces the blob label pattern and length", () => {
  const longest = "L".repeat(64);
  assert(parseManifest(withBlobs(1, () => longest)).blobs[longest] !== undefined);
  rejects(withBlobs(1, () => "L".repeat(65)), "blob labels must match");
  rejects(withBlobs(1, () => ""), "blob labels must match");
  rejects(withBlobs(1, () => "a/b"), "blob labels must match");
});

Deno.test("parseManifest() enforces the manifest size limit", () => {
  const base = fixture("netboot.toml");
  const padTo = (size: number) => base + "#".repeat(size - base.length - 1) + "\n";
  assertEquals(parseManifest(padTo(MANIFEST_MAX_BYTES)).revision, 0);
  rejects(padTo(MANIFEST_MAX_BYTES + 1), `more than the ${MANIFEST_MAX_BYTES} allowed`);
  const bytes = new TextEncoder().encode(padTo(MANIFEST_MAX_BYTES + 1));
  rejects(bytes, `manifest is ${MANIFEST_MAX_BYTES + 1} bytes`);
});

Deno.test("parseManifest() rejects bytes that are not UTF-8", () => {
  rejects(new Uint8Array([0x61, 0x20, 0x3d, 0x20, 0xff]), "not valid UTF-8");
});

Deno.test("parseManifest() rejects sizes beyond the safe integer range and negatives", () => {
  const m = fixture("netboot.toml");
  rejects(
    m.replace('base.size" = 4', 'base.size" = 9007199254740993'),
    "expected at most 9007199254740991",
  );
  rejects(m.replace('base.size" = 4', 'base.size" = -1'), "expected a non-negative integer");
});
