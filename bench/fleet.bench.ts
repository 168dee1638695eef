import { execFileSync } from "node:child_process";
import { percentile, runFleet } from "./fleet/fleet-run.js";
import type { BenchResult } from "./harness.js";

const SUITE = "fleet";

/** `--name value` from the benchmark's arguments. */
function option(argv: readonly string[], name: string, fallback: number): number {
  const at = argv.indexOf(name);
  if (at === -1) return fallback;
  const value = Number(argv[at + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} needs a positive number`);
  return value;
}

/** Opt-in (minutes at full size): runs only when named, `npm run bench -- fleet [--nodes N]`. */
export const optIn = true;

/**
 * Ten thousand nodes on one gateway (issue 15): the real daemon, N nodes paired through the protocol and
 * held over mutual TLS by load processes, then hold, idle CPU, dispatch, revoke and a reconnect storm.
 */
export async function run(argv: readonly string[] = []): Promise<BenchResult[]> {
  const nodes = option(argv, "--nodes", 10_000);
  const holdMs = option(argv, "--hold-s", 300) * 1000;
  // Figures are taken from the daemon as it is installed (dist/), so build it first.
  process.stderr.write("fleet: npm run build\n");
  execFileSync("npm", ["run", "--silent", "build"], { stdio: ["ignore", "ignore", "inherit"] });
  const report = await runFleet({
    gatewayEntry: "built",
    nodes,
    workers: option(argv, "--workers", 2),
    holdMs,
    cpuWindowMs: Math.min(30_000, holdMs / 2),
    dispatch: { mode: "random", calls: 1000 },
    revokes: 50,
    storm: true,
    ...(argv.includes("--reuse") ? { reuseDir: argv[argv.indexOf("--reuse") + 1]! } : {}),
    progress: (line) => process.stderr.write(`fleet: ${line}\n`),
  });
  return [
    { suite: SUITE, name: "nodes held", value: report.held, unit: "nodes" },
    {
      suite: SUITE,
      name: "gateway RSS per node",
      value: (report.rssFullKb - report.rssZeroKb) / nodes,
      unit: "KB",
    },
    {
      suite: SUITE,
      name: "dispatch p99 at full fleet",
      value: percentile(report.dispatchMs, 99),
      unit: "ms",
      iterations: report.dispatchMs.length,
    },
    {
      suite: SUITE,
      name: "revoke cut p99 at full fleet",
      value: percentile(report.revokeCutMs, 99),
      unit: "ms",
      iterations: report.revokeCutMs.length,
    },
    {
      suite: SUITE,
      name: "reconnect storm: all nodes back",
      value: (report.stormMs ?? Number.NaN) / 1000,
      unit: "s",
    },
    { suite: SUITE, name: "heartbeat CPU at full fleet", value: report.heartbeatCpuPercent, unit: "%" },
    {
      suite: SUITE,
      name: "admin API p99 during the storm",
      value: percentile(report.adminDuringStormMs ?? [], 99),
      unit: "ms",
      iterations: report.adminDuringStormMs?.length ?? 0,
    },
    {
      suite: SUITE,
      name: "dispatch p50 at full fleet",
      value: percentile(report.dispatchMs, 50),
      unit: "ms",
    },
    {
      suite: SUITE,
      name: "revoke cut p50 at full fleet",
      value: percentile(report.revokeCutMs, 50),
      unit: "ms",
    },
  ];
}
