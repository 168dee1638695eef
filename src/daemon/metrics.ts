import type { CounterFamily } from "./event-counters.js";

/**
 * `GET /metrics` in the Prometheus text format (version 0.0.4): counts an operator alerts on, never
 * names, ids or secrets. Served to the same callers as the API (Prometheus sends the admin token with
 * `authorization: { credentials_file: <state-root>/admin.token }`).
 */

export interface MetricsSnapshot {
  version: string;
  uptimeSeconds: number;
  devices: { active: number; revoked: number };
  nodes: { online: number; stale: number; offline: number };
  pendingPairingRequests: number;
  nodeConnections: number;
  vaultSecrets: number | null;
  /** Counters since start (EventCounters). */
  counters?: CounterFamily[];
  /** The daemon process's memory and CPU (processStats()). */
  process?: ProcessStats;
}

export interface ProcessStats {
  residentBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  cpuSeconds: number;
}

export function processStats(): ProcessStats {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    residentBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    // Buffers and native memory V8 knows of (TLS and HTTP/2 buffers among them).
    externalBytes: memory.external,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

/** The usual names of Prometheus' process and Node.js collectors. */
function processFamilies(p: ProcessStats): Family[] {
  const gauge = (name: string, help: string, value: number): Family => ({
    name,
    help,
    type: "gauge",
    samples: [[{}, value]],
  });
  return [
    gauge("process_resident_memory_bytes", "Resident memory size in bytes", p.residentBytes),
    gauge("nodejs_heap_size_used_bytes", "V8 heap in use, bytes", p.heapUsedBytes),
    gauge("nodejs_heap_size_total_bytes", "V8 heap reserved, bytes", p.heapTotalBytes),
    gauge(
      "nodejs_external_memory_bytes",
      "Memory outside the V8 heap that V8 tracks, bytes",
      p.externalBytes,
    ),
    {
      name: "process_cpu_seconds_total",
      help: "User and system CPU time spent, seconds",
      type: "counter",
      samples: [[{}, Math.round(p.cpuSeconds * 1000) / 1000]],
    },
  ];
}

interface Family {
  name: string;
  help: string;
  type: "gauge" | "counter";
  samples: [labels: Record<string, string>, value: number][];
}

const escapeLabel = (value: string) =>
  value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

export function renderMetrics(s: MetricsSnapshot): string {
  const families: Family[] = [
    {
      name: "palyra_build_info",
      help: "Palyra version",
      type: "gauge",
      samples: [[{ version: s.version }, 1]],
    },
    {
      name: "palyra_uptime_seconds",
      help: "Seconds since the daemon started",
      type: "gauge",
      samples: [[{}, s.uptimeSeconds]],
    },
    {
      name: "palyra_devices",
      help: "Paired devices by state",
      type: "gauge",
      samples: [
        [{ state: "active" }, s.devices.active],
        [{ state: "revoked" }, s.devices.revoked],
      ],
    },
    {
      name: "palyra_nodes",
      help: "Registered nodes by presence",
      type: "gauge",
      samples: (["online", "stale", "offline"] as const).map((p) => [{ presence: p }, s.nodes[p]]),
    },
    {
      name: "palyra_pairing_requests_pending",
      help: "Pairing requests waiting for a human decision",
      type: "gauge",
      samples: [[{}, s.pendingPairingRequests]],
    },
    {
      name: "palyra_node_connections",
      help: "Live mutual-TLS connections of devices (gRPC and QUIC)",
      type: "gauge",
      samples: [[{}, s.nodeConnections]],
    },
  ];
  if (s.vaultSecrets !== null)
    families.push({
      name: "palyra_vault_secrets",
      help: "Secrets in the vault",
      type: "gauge",
      samples: [[{}, s.vaultSecrets]],
    });
  for (const counter of s.counters ?? []) families.push({ ...counter, type: "counter" });
  if (s.process) families.push(...processFamilies(s.process));
  let text = "";
  for (const f of families) {
    text += `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`;
    for (const [labels, value] of f.samples) {
      const rendered = Object.entries(labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(",");
      text += `${f.name}${rendered ? `{${rendered}}` : ""} ${value}\n`;
    }
  }
  return text;
}
