import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFileAtomic } from "../src/common/atomic-file.js";
import { systemRandom } from "../src/common/random.js";
import { openVault } from "../src/vault/open-vault.js";
import { type BenchResult, measure, opsResult } from "./harness.js";

const SUITE = "vault";

/**
 * Vault put and get on the encrypted-file backend (1 KiB values, 64 secrets rewritten in turn), beside
 * the bare file operations underneath measured in the same run: one durable atomic write (temp file,
 * fsync, rename, fsync of the directory) and one read of a file of the same size. A put also commits
 * two SQLite transactions (synchronous=FULL) and deletes the blob it replaced; a get reads the index,
 * the blob and opens two AEAD layers.
 */
export async function run(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "palyra-vault-bench-"));
  try {
    const vault = await openVault(join(dir, "vault"), { env: { PALYRA_VAULT_BACKEND: "encrypted-file" } });
    const value = systemRandom.bytes(1024);
    let i = 0;
    const put = await measure(() => vault.put("global", `key-${i++ % 64}`, value), {
      warmupMs: 500,
      durationMs: 3_000,
    });
    const get = await measure(() => vault.get("global", `key-${i++ % 64}`), {
      warmupMs: 300,
      durationMs: 2_000,
    });
    vault.close();

    const bare = join(dir, "bare.bin");
    const write = await measure(() => writeFileAtomic(bare, value), { warmupMs: 300, durationMs: 2_000 });
    const read = await measure(() => readFileSync(bare), { warmupMs: 300, durationMs: 1_000 });
    return [
      opsResult(SUITE, "vault put, 1 KiB, encrypted-file backend", put),
      opsResult(SUITE, "bare durable atomic file write, 1 KiB", write),
      { suite: SUITE, name: "bare writes per vault put", value: write.opsPerSec / put.opsPerSec, unit: "x" },
      opsResult(SUITE, "vault get, 1 KiB, encrypted-file backend", get),
      opsResult(SUITE, "bare file read, 1 KiB", read),
      { suite: SUITE, name: "bare reads per vault get", value: read.opsPerSec / get.opsPerSec, unit: "x" },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
