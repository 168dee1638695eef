import { readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BenchResult } from "./harness.js";

/**
 * Runs every `bench/*.bench.ts` in turn (each exports `run(): Promise<BenchResult[]>`) and prints an
 * aligned table, or a JSON array with `--json`. Other arguments select benchmark files by name.
 * Progress goes to stderr so `--json` output stays clean.
 */

interface BenchModule {
  run(argv: readonly string[]): Promise<BenchResult[]>;
  /** Runs only when named (long benchmarks such as the fleet). */
  optIn?: boolean;
}

/** Options that take a value, so the value is not read as a benchmark name. */
const VALUED = new Set(["--nodes", "--workers", "--hold-s", "--reuse", "--connections"]);

async function main(argv: string[]): Promise<void> {
  const json = argv.includes("--json");
  const only = argv.filter((a, i) => !a.startsWith("--") && !VALUED.has(argv[i - 1] ?? ""));
  const dir = dirname(fileURLToPath(import.meta.url));
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".bench.ts"))
    .filter((f) => only.length === 0 || only.includes(basename(f, ".bench.ts")))
    .sort();
  if (files.length === 0) throw new Error(`no benchmark matches ${only.join(", ") || "bench/*.bench.ts"}`);

  const results: BenchResult[] = [];
  for (const file of files) {
    process.stderr.write(`running ${file} ...\n`);
    const module = (await import(pathToFileURL(join(dir, file)).href)) as Partial<BenchModule>;
    if (typeof module.run !== "function") throw new Error(`${file} does not export run()`);
    if (module.optIn && !only.includes(basename(file, ".bench.ts"))) {
      process.stderr.write(
        `skipping ${file} (run it by name: npm run bench -- ${basename(file, ".bench.ts")})\n`,
      );
      continue;
    }
    results.push(...(await module.run(argv)));
  }
  process.stdout.write(json ? `${JSON.stringify(results, null, 2)}\n` : formatTable(results));
}

function formatValue(r: BenchResult): string {
  if (r.unit === "x") return r.value.toFixed(1);
  return r.value >= 100 ? Math.round(r.value).toLocaleString("en-US") : r.value.toFixed(2);
}

export function formatTable(results: readonly BenchResult[]): string {
  const rows = [
    ["suite", "benchmark", "value", "unit", "iterations", "time"],
    ...results.map((r) => [
      r.suite,
      r.name,
      formatValue(r),
      r.unit,
      r.iterations === undefined ? "" : String(r.iterations),
      r.durationMs === undefined ? "" : `${(r.durationMs / 1000).toFixed(2)} s`,
    ]),
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => (row[col] as string).length)));
  const numeric = new Set([2, 4, 5]);
  const line = (row: string[]) =>
    row
      .map((cell, col) => (numeric.has(col) ? cell.padStart(widths[col]!) : cell.padEnd(widths[col]!)))
      .join("  ")
      .trimEnd();
  return `${[line(rows[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n")}\n`;
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
