import assert from "node:assert/strict";
import { test } from "node:test";
import { EventCounters } from "./event-counters.js";
import { renderMetrics } from "./metrics.js";

const record = (kind: string, detail?: Record<string, string>) => ({
  id: "1",
  at: 0,
  kind,
  actor: "admin",
  ...(detail ? { detail } : {}),
});

test("audit events and refusals become Prometheus counters with fixed labels", () => {
  const counters = new EventCounters();
  counters.audit(record("pairing.approved"));
  counters.audit(record("pairing.completed"));
  counters.audit(record("pairing.rejected"));
  counters.audit(record("pairing.failed_attempt"));
  counters.audit(record("node.invoked", { state: "succeeded" }));
  counters.audit(record("node.invoked", { state: "succeeded" }));
  counters.audit(record("node.invoked", { state: "timed_out" }));
  counters.audit(record("device.revoked"));
  counters.audit(record("device.certificate_rotated"));
  counters.audit(record("device.certificate_recovered"));
  counters.audit(record("secret.revealed"));
  counters.refused("unknown_certificate");
  counters.refused("Not A Word; DROP");
  const text = renderMetrics({
    version: "0",
    uptimeSeconds: 1,
    devices: { active: 0, revoked: 0 },
    nodes: { online: 0, stale: 0, offline: 0 },
    pendingPairingRequests: 0,
    nodeConnections: 0,
    vaultSecrets: null,
    counters: counters.families(),
  });
  for (const line of [
    "# TYPE palyra_pairings_total counter",
    'palyra_pairings_total{outcome="approved"} 1',
    'palyra_pairings_total{outcome="completed"} 1',
    'palyra_pairings_total{outcome="rejected"} 1',
    "palyra_pairing_failed_attempts_total 1",
    'palyra_invocations_total{state="succeeded"} 2',
    'palyra_invocations_total{state="timed_out"} 1',
    "palyra_revocations_total 1",
    'palyra_refused_connections_total{reason="unknown_certificate"} 1',
    'palyra_refused_connections_total{reason="other"} 1',
    'palyra_client_certificates_issued_total{occasion="pairing"} 1',
    'palyra_client_certificates_issued_total{occasion="renewal"} 1',
    'palyra_client_certificates_issued_total{occasion="recovery"} 1',
  ])
    assert.ok(text.includes(`${line}\n`), `${line} in:\n${text}`);
});

test("a family with no events yet is reported as 0", () => {
  const revocations = new EventCounters().families().find((f) => f.name === "palyra_revocations_total");
  assert.deepEqual(revocations?.samples, [[{}, 0]]);
});
