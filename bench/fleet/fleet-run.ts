import { type ChildProcess, fork } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { FleetGateway, type GatewayEntry } from "./fleet-gateway.js";
import { type FleetIdentity, now } from "./fleet-node.js";
import type { WorkerRequest, WorkerStats } from "./load-worker.js";

/**
 * The fleet run: a real daemon, N nodes paired through the protocol and held by load processes, then
 * the measurements of issue 15 (hold, idle CPU, dispatch, revoke cut, reconnect storm). Used by the
 * `fleet` benchmark at full size and by a small correctness test.
 */

export interface FleetOptions {
  nodes: number;
  workers: number;
  holdMs: number;
  /** Idle-CPU window inside the hold. */
  cpuWindowMs: number;
  /** "random": this many calls to random nodes; "each": one call per node. */
  dispatch: { mode: "random"; calls: number } | { mode: "each" };
  revokes: number;
  storm: boolean;
  progress?: (line: string) => void;
  /** Keep the gateway's state and the fleet's identities here and reuse them next time (no pairing;
   *  certificates last a day). For iterating on the gateway; fresh figures pair from scratch. */
  reuseDir?: string;
  /** How the daemon is started (default "source"); the benchmark builds and runs the installed form. */
  gatewayEntry?: GatewayEntry;
}

export interface FleetReport {
  nodes: number;
  onlineAfterConnect: number;
  connectMs: number;
  /** Nodes whose session never dropped during the hold, and the gateway's online count after it. */
  held: number;
  onlineAfterHold: number;
  rssZeroKb: number;
  rssFullKb: number;
  heartbeatCpuPercent: number;
  dispatchMs: number[];
  dispatchFailures: number;
  revokeCutMs: number[];
  stormMs?: number;
  stormOnline?: number;
  adminDuringStormMs?: number[];
}

const WORKER = fileURLToPath(new URL("./load-worker.ts", import.meta.url));

class Worker {
  readonly child: ChildProcess;
  readonly #waiters = new Map<string, ((m: Record<string, unknown>) => void)[]>();
  deviceIds: string[] = [];
  paired = 0;

  constructor(onError: (message: string) => void) {
    this.child = fork(WORKER, [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.child.on("message", (raw) => {
      const m = raw as Record<string, unknown> & { type: string };
      if (m.type === "error") onError(String(m.message));
      if (m.type === "progress") this.paired = m.paired as number;
      const waiting = this.#waiters.get(m.type)?.shift();
      waiting?.(m);
    });
  }

  next(type: string): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      const list = this.#waiters.get(type) ?? [];
      list.push(resolve);
      this.#waiters.set(type, list);
    });
  }

  async ask(request: WorkerRequest, reply: string): Promise<Record<string, unknown>> {
    const answer = this.next(reply);
    this.child.send(request);
    return answer;
  }
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  progress: () => Promise<string>,
  log: (line: string) => void,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastLog = 0;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs / 1000} s (${await progress()})`);
    if (Date.now() - lastLog > 5_000) {
      lastLog = Date.now();
      log(`${what}: ${await progress()}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

export { percentile };

async function activeDevices(gateway: FleetGateway): Promise<Set<string>> {
  const ids = new Set<string>();
  let after = "";
  for (;;) {
    const page = (await gateway.request(
      "GET",
      `/v1/devices?limit=1000${after ? `&after=${after}` : ""}`,
    )) as {
      devices: { device_id: string; state: string }[];
      next_after: string | null;
    };
    for (const d of page.devices) if (d.state === "active") ids.add(d.device_id);
    if (!page.next_after) return ids;
    after = page.next_after;
  }
}

export async function runFleet(options: FleetOptions): Promise<FleetReport> {
  const log = options.progress ?? (() => {});
  const root = options.reuseDir ?? mkdtempSync(join(tmpdir(), "palyra-fleet-"));
  const saved = join(root, "fleet-identities.json");
  const reused: FleetIdentity[] | undefined =
    options.reuseDir && existsSync(saved) ? JSON.parse(readFileSync(saved, "utf8")) : undefined;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PALYRA_STORE_PASSPHRASE: "fleet benchmark",
    PALYRA_LOG_LEVEL: "warn",
    // A mass enrolment from one address: the pairing rate limits are raised for it, as an operator would.
    PALYRA_PAIRING_BEGINS_PER_ADDRESS_PER_MINUTE: "1000000",
    PALYRA_PAIRING_BEGINS_PER_MINUTE: "1000000",
  };
  delete env.DBUS_SESSION_BUS_ADDRESS;
  delete env.PALYRA_STATE_ROOT;
  const gateway = new FleetGateway(join(root, "gw"), env, options.gatewayEntry);
  const errors: string[] = [];
  const workers: Worker[] = [];
  try {
    await gateway.start();
    const [host, port] = [
      gateway.summary.node_address.replace(/:\d+$/, ""),
      Number(gateway.summary.node_address.split(":").at(-1)),
    ];
    const target = { host, port, caPem: readFileSync(join(gateway.stateRoot, "ca.pem"), "utf8") };
    for (let i = 0; i < options.workers; i++) workers.push(new Worker((m) => errors.push(m)));
    const failIfErrors = () => {
      if (errors.length > 0) throw new Error(`load process failed: ${errors[0]}`);
    };

    // 1. Pair the fleet through the protocol.
    const share = (i: number) =>
      Math.floor(options.nodes / options.workers) + (i < options.nodes % options.workers ? 1 : 0);
    const pairStart = now();
    // A reused fleet loses the nodes the last run revoked: only active devices are held.
    const active = reused ? await activeDevices(gateway) : undefined;
    const usable = reused?.filter((id) => active!.has(id.deviceId));
    const paired = workers.map((w, i) =>
      usable
        ? w.ask(
            { type: "load", identities: usable.filter((_, k) => k % options.workers === i), target },
            "paired",
          )
        : w.ask(
            {
              type: "pair",
              count: share(i),
              target,
              admin: { url: gateway.summary.admin_url, token: gateway.token },
            },
            "paired",
          ),
    );
    const progressTimer = setInterval(
      () => log(`pairing: ${workers.reduce((n, w) => n + w.paired, 0)} of ${options.nodes}`),
      5_000,
    );
    let watch: NodeJS.Timeout | undefined;
    try {
      const failed = new Promise<never>((_, reject) => {
        watch = setInterval(() => {
          if (errors.length > 0) reject(new Error(`load process failed: ${errors[0]}`));
        }, 200);
      });
      const answers = await Promise.race([Promise.all(paired), failed]);
      for (const [i, answer] of answers.entries()) workers[i]!.deviceIds = answer.deviceIds as string[];
      if (options.reuseDir && !reused)
        writeFileSync(saved, JSON.stringify(answers.flatMap((a) => a.identities as FleetIdentity[])));
    } finally {
      clearInterval(progressTimer);
      clearInterval(watch);
    }
    if (reused) options.nodes = workers.reduce((n, w) => n + w.deviceIds.length, 0);
    log(`paired ${options.nodes} nodes in ${((now() - pairStart) / 1000).toFixed(1)} s`);

    // 2. RSS with the fleet paired but not connected, then connect everyone.
    const rssZeroKb = gateway.rssKb();
    const memoryZero = await gateway.memoryKb();
    const connectStart = now();
    await Promise.all(workers.map((w) => w.ask({ type: "connect", rampInFlight: 128 }, "connected")));
    await waitFor(
      "connect",
      async () => {
        failIfErrors();
        return (await gateway.online()) >= options.nodes;
      },
      300_000,
      async () => `${await gateway.online()} of ${options.nodes} online`,
      log,
    );
    const connectMs = now() - connectStart;
    const onlineAfterConnect = await gateway.online();
    log(`all ${onlineAfterConnect} online in ${(connectMs / 1000).toFixed(1)} s`);

    // 3. Hold: nothing may drop. Idle CPU is measured in a window inside it.
    await Promise.all(workers.map((w) => w.ask({ type: "reset" }, "reset")));
    const holdStart = now();
    const quiet = Math.max(0, (options.holdMs - options.cpuWindowMs) / 2);
    await new Promise((r) => setTimeout(r, quiet));
    const cpu0 = gateway.cpuMs();
    const t0 = now();
    await new Promise((r) => setTimeout(r, options.cpuWindowMs));
    const heartbeatCpuPercent = ((gateway.cpuMs() - cpu0) / (now() - t0)) * 100;
    await new Promise((r) => setTimeout(r, Math.max(0, options.holdMs - (now() - holdStart))));
    const stats = await Promise.all(workers.map((w) => w.ask({ type: "stats" }, "stats")));
    const lostDuringHold = stats.reduce((n, s) => n + (s.stats as WorkerStats).lost, 0);
    const held = options.nodes - lostDuringHold;
    const onlineAfterHold = await gateway.online();
    const rssFullKb = gateway.rssKb();
    const memoryFull = await gateway.memoryKb();
    const perNode = (k: "heapUsed" | "external") =>
      ((memoryFull[k] - memoryZero[k]) / options.nodes).toFixed(1);
    log(
      `memory per node: RSS ${((rssFullKb - rssZeroKb) / options.nodes).toFixed(1)} KB, V8 heap ${perNode("heapUsed")} KB, external ${perNode("external")} KB`,
    );
    log(
      `held ${held} of ${options.nodes} for ${(options.holdMs / 1000).toFixed(0)} s; gateway CPU ${heartbeatCpuPercent.toFixed(1)} %`,
    );

    // 4. Dispatch through the admin API.
    const all = workers.flatMap((w) => w.deviceIds);
    const targets =
      options.dispatch.mode === "each"
        ? all
        : Array.from({ length: options.dispatch.calls }, () => all[Math.floor(Math.random() * all.length)]!);
    const dispatchMs: number[] = [];
    let dispatchFailures = 0;
    for (const [i, deviceId] of targets.entries()) {
      const start = now();
      const result = (await gateway.request("POST", `/v1/nodes/${deviceId}/invoke`, {
        capability: "echo",
        input: { i },
      })) as { state: string; output: unknown };
      dispatchMs.push(now() - start);
      if (result.state !== "succeeded" || (result.output as { i?: number })?.i !== i) dispatchFailures++;
    }
    log(`dispatched ${targets.length} calls, p99 ${percentile(dispatchMs, 99).toFixed(1)} ms`);

    // 5. Revoke: from the admin call to the node's session ending, as the node sees it.
    const revokeCutMs: number[] = [];
    const revoked = new Set<string>();
    const revokes = Math.min(options.revokes, Math.floor(options.nodes / 2));
    for (let i = 0; i < revokes; i++) {
      const w = workers[i % workers.length]!;
      const deviceId = w.deviceIds.find((id) => !revoked.has(id))!;
      revoked.add(deviceId);
      const start = now();
      await gateway.request("POST", `/v1/devices/${deviceId}/revoke`, { reason: "fleet benchmark" });
      let cut: number | null = null;
      const giveUp = now() + 10_000;
      while (cut === null && now() < giveUp) {
        cut = (
          (await w.ask({ type: "cuts", deviceIds: [deviceId] }, "cuts")).cuts as Record<string, number | null>
        )[deviceId]!;
        if (cut === null) await new Promise((r) => setTimeout(r, 2));
      }
      revokeCutMs.push(cut === null ? Number.POSITIVE_INFINITY : cut - start);
    }
    if (revokes > 0) log(`revoked ${revokes}, cut p99 ${percentile(revokeCutMs, 99).toFixed(1)} ms`);

    const report: FleetReport = {
      nodes: options.nodes,
      onlineAfterConnect,
      connectMs,
      held,
      onlineAfterHold,
      rssZeroKb,
      rssFullKb,
      heartbeatCpuPercent,
      dispatchMs,
      dispatchFailures,
      revokeCutMs,
    };

    // 6. Reconnect storm: restart the gateway on the same ports; time until every node is back.
    if (options.storm) {
      const ports = gateway.ports();
      const expected = options.nodes - revokes;
      await gateway.stop("SIGTERM");
      const stormStart = now();
      await gateway.start(ports);
      log(
        `reconnect storm: the restarted gateway serves after ${((now() - stormStart) / 1000).toFixed(1)} s`,
      );
      const adminDuringStormMs: number[] = [];
      let online = 0;
      await waitFor(
        "reconnect storm",
        async () => {
          const t = now();
          online = await gateway.online();
          adminDuringStormMs.push(now() - t);
          return online >= expected;
        },
        600_000,
        async () => `${online} of ${expected} back`,
        log,
      );
      report.stormMs = now() - stormStart;
      report.stormOnline = online;
      report.adminDuringStormMs = adminDuringStormMs;
      log(`reconnect storm: ${online} back in ${(report.stormMs / 1000).toFixed(1)} s`);
    }
    return report;
  } finally {
    await Promise.all(
      workers.map(async (w) => {
        if (w.child.exitCode !== null) return;
        const exited = new Promise((r) => w.child.once("exit", r));
        w.child.send({ type: "stop" });
        const timer = setTimeout(() => w.child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    await gateway.stop();
    if (!options.reuseDir) rmSync(root, { recursive: true, force: true });
  }
}
