import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { openVault } from "../src/vault/open-vault.js";
import { within } from "./helpers/pki.js";

/** Several processes on one vault (the CLI beside the daemon), and a writer killed mid-write. */

const root = mkdtempSync(join(tmpdir(), "palyra-vault-procs-"));
const writer = resolve(import.meta.dirname, "fixtures/vault-writer.ts");
const children: ChildProcessWithoutNullStreams[] = [];
after(() => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});
const FILE_ENV = { PALYRA_VAULT_BACKEND: "encrypted-file" };

function startWriter(dir: string, name: string, count: number) {
  const child = spawn(process.execPath, ["--import", "tsx", writer, dir, name, String(count)], {
    env: { ...process.env, ...FILE_ENV },
  });
  children.push(child);
  const exited = once(child, "exit") as Promise<[number | null]>;
  const acked: number[] = [];
  let buffer = "";
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  child.stdout.on("data", (d: Buffer) => {
    buffer += d.toString();
    const lines = buffer.split("\n");
    buffer = lines.pop() ?? "";
    for (const line of lines) if (line.startsWith("ok ")) acked.push(Number(line.slice(3)));
    child.emit("acked", acked.length);
  });
  return { child, exited, acked, stderr: () => stderr };
}

test("two processes writing at once lose nothing", async () => {
  const dir = join(root, "concurrent");
  (await openVault(dir, { env: FILE_ENV })).close();
  const writers = [startWriter(dir, "alpha", 40), startWriter(dir, "beta", 40)];
  for (const w of writers) {
    const [code] = await within(w.exited, "writer to finish", 120_000);
    assert.equal(code, 0, w.stderr());
    assert.equal(w.acked.length, 40);
  }
  const vault = await openVault(dir, { env: FILE_ENV });
  try {
    for (const name of ["alpha", "beta"]) {
      const listed = vault.list({ scope: `principal:${name}` });
      assert.equal(listed.length, 40, name);
      for (let i = 0; i < 40; i++)
        assert.equal((await vault.get(`principal:${name}`, `k${i}`)).expose().toString(), `${name}-${i}`);
    }
    assert.match((await vault.get("global", "shared")).expose().toString(), /^(alpha|beta)-39$/);
    assert.equal(
      readdirSync(join(dir, "blobs")).length,
      81,
      "one blob per secret: no replaced blob left behind",
    );
  } finally {
    vault.close();
  }
});

test("a writer killed mid-write loses no acknowledged secret, and its leftovers are harmless", async () => {
  const dir = join(root, "killed");
  (await openVault(dir, { env: FILE_ENV })).close();
  const w = startWriter(dir, "gamma", 100_000);
  await within(
    new Promise<void>((done) => {
      const check = (count: number) => {
        if (count >= 25) {
          w.child.off("acked", check);
          done();
        }
      };
      w.child.on("acked", check);
    }),
    "25 acknowledged writes",
    60_000,
  );
  w.child.kill("SIGKILL");
  await w.exited;
  const acked = [...w.acked];
  const vault = await openVault(dir, { env: FILE_ENV });
  try {
    for (const i of acked)
      assert.equal((await vault.get("principal:gamma", `k${i}`)).expose().toString(), `gamma-${i}`, `k${i}`);
    const listed = vault.list({ scope: "principal:gamma" }).length;
    assert.ok(
      listed >= acked.length && listed <= acked.length + 1,
      `${listed} listed, ${acked.length} acked`,
    );
    const shared = (await vault.get("global", "shared")).expose().toString();
    assert.match(shared, /^gamma-\d+$/);
    assert.ok(Number(shared.split("-")[1]) >= Math.max(...acked));
  } finally {
    vault.close();
  }
});
