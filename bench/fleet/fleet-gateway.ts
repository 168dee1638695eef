import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The real daemon for the fleet benchmark: `palyra daemon` in its own process and state root, every
 * listener on port 0 at first, then (after a restart) on the ports it had, so the fleet finds it again.
 */

const SOURCE_ENTRY = fileURLToPath(new URL("../../src/cli/run.ts", import.meta.url));
const BUILT_ENTRY = fileURLToPath(new URL("../../bin/palyra.js", import.meta.url));

/** "built": the installed form (`bin/palyra.js` over `dist/`, as users run it; what figures are taken
 *  from). "source": through tsx, for tests that must not depend on a build. tsx's transform names every
 *  function with `Object.defineProperty`, which gives each closure made per connection its own
 *  property store: a few KB per node that the installed daemon does not have. */
export type GatewayEntry = "built" | "source";

export interface GatewaySummary {
  admin_url: string;
  node_address: string;
  quic_address: string | null;
}

export class FleetGateway {
  #child: ChildProcess | undefined;
  summary!: GatewaySummary;
  token = "";

  constructor(
    readonly stateRoot: string,
    readonly env: NodeJS.ProcessEnv,
    readonly entry: GatewayEntry = "source",
  ) {}

  get pid(): number {
    return this.#child!.pid!;
  }

  /** Starts the daemon; resolves with its summary once it serves. `ports` pins the listeners. */
  async start(ports?: { admin: number; node: number }): Promise<void> {
    const args = [
      // For diagnosis, e.g. FLEET_GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
      ...(process.env.FLEET_GATEWAY_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
      ...(this.entry === "built" ? [BUILT_ENTRY] : ["--import", "tsx", SOURCE_ENTRY]),
      "daemon",
      "--state-root",
      this.stateRoot,
      "--admin-port",
      String(ports?.admin ?? 0),
      "--node-port",
      String(ports?.node ?? 0),
      "--quic-port",
      "0",
      "--json",
    ];
    const child = spawn(process.execPath, args, { env: this.env, stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    let stdout = "";
    let stderr = "";
    child.stderr!.on("data", (d) => {
      stderr = (stderr + d).slice(-8_000);
    });
    this.summary = await new Promise<GatewaySummary>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`daemon did not start: ${stderr}`)), 60_000);
      child.stdout!.on("data", (d) => {
        stdout += d;
        try {
          const parsed = JSON.parse(stdout) as GatewaySummary & { error?: unknown };
          clearTimeout(timer);
          if (parsed.error !== undefined) reject(new Error(`daemon failed: ${stdout}`));
          else resolve(parsed);
        } catch {
          // not all of it yet
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`daemon exited ${code}: ${stdout}${stderr}`));
      });
    });
    this.token = readFileSync(join(this.stateRoot, "admin.token"), "utf8").trim();
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill(signal);
    await exited;
  }

  ports(): { admin: number; node: number } {
    return {
      admin: Number(new URL(this.summary.admin_url).port),
      node: Number(this.summary.node_address.split(":").at(-1)),
    };
  }

  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${this.summary.admin_url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
    return text.startsWith("{") ? JSON.parse(text) : text;
  }

  /** Nodes online by the gateway's own count (/metrics). */
  async online(): Promise<number> {
    const text = (await this.request("GET", "/metrics")) as string;
    const match = /^palyra_nodes\{presence="online"\} (\d+)$/m.exec(text);
    return match ? Number(match[1]) : 0;
  }

  /** The daemon's own memory figures (/metrics), in KiB. */
  async memoryKb(): Promise<{ rss: number; heapUsed: number; external: number }> {
    const text = (await this.request("GET", "/metrics")) as string;
    const read = (name: string) =>
      Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1] ?? Number.NaN) / 1024;
    return {
      rss: read("process_resident_memory_bytes"),
      heapUsed: read("nodejs_heap_size_used_bytes"),
      external: read("nodejs_external_memory_bytes"),
    };
  }

  /** Resident set size in KiB, from /proc. */
  rssKb(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, "utf8");
    return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? Number.NaN);
  }

  /** User + system CPU time so far, in ms (clock ticks of 10 ms, as Linux reports them). */
  cpuMs(): number {
    const fields = readFileSync(`/proc/${this.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  }
}
