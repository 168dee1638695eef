import assert from "node:assert/strict";
import { test } from "node:test";
import { type MetricsSnapshot, processStats, renderMetrics } from "./metrics.js";

const snapshot: MetricsSnapshot = {
  version: '1.2"3',
  uptimeSeconds: 42,
  devices: { active: 3, revoked: 1 },
  nodes: { online: 2, stale: 0, offline: 1 },
  pendingPairingRequests: 1,
  nodeConnections: 4,
  vaultSecrets: 7,
};

test("metrics render in the Prometheus text format, one HELP and TYPE per family", () => {
  const text = renderMetrics(snapshot);
  assert.match(
    text,
    /^# HELP palyra_build_info Palyra version\n# TYPE palyra_build_info gauge\npalyra_build_info\{version="1\.2\\"3"\} 1\n/,
  );
  assert.match(text, /\npalyra_devices\{state="active"\} 3\npalyra_devices\{state="revoked"\} 1\n/);
  assert.match(text, /\npalyra_nodes\{presence="offline"\} 1\n/);
  assert.match(text, /\npalyra_vault_secrets 7\n$/);
  for (const line of text.trim().split("\n"))
    assert.match(
      line,
      /^(# (HELP|TYPE) palyra_[a-z_]+ .+|palyra_[a-z_]+(\{[a-z_]+="(?:[^"\\]|\\.)*"(,[a-z_]+="(?:[^"\\]|\\.)*")*\})? -?\d+(\.\d+)?)$/,
      line,
    );
  assert.ok(!renderMetrics({ ...snapshot, vaultSecrets: null }).includes("vault"));
});

test("process metrics use the usual collector names and this process's real figures", () => {
  const text = renderMetrics({ ...snapshot, process: processStats() });
  const value = (name: string) => Number(new RegExp(`\\n${name} (\\d+(?:\\.\\d+)?)\\n`).exec(text)?.[1]);
  assert.ok(value("process_resident_memory_bytes") > 10 * 1024 * 1024);
  assert.ok(value("nodejs_heap_size_used_bytes") > 0);
  assert.ok(value("nodejs_heap_size_used_bytes") <= value("nodejs_heap_size_total_bytes"));
  assert.ok(value("nodejs_external_memory_bytes") > 0);
  assert.ok(value("process_cpu_seconds_total") > 0);
  assert.match(text, /# TYPE process_cpu_seconds_total counter\n/);
});
