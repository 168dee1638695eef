import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import type { Logger } from "./logger.js";
import { OperationalLog } from "./operational-log.js";

function capture() {
  const lines: { fields: Record<string, unknown>; message: string }[] = [];
  const logger = {
    info: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }),
  };
  return { lines, logger: logger as unknown as Logger };
}

test("pairing, revocation and registration events are logged at info; others are not", () => {
  const { lines, logger } = capture();
  const log = new OperationalLog(logger, new ManualClock(0));
  const record = (kind: string) => ({
    id: "1",
    at: 0,
    kind,
    actor: "admin",
    deviceId: "D",
    detail: { code_id: "ABCD" },
  });
  for (const kind of [
    "pairing.begin",
    "pairing.approved",
    "pairing.completed",
    "device.revoked",
    "node.registered",
    "secret.revealed",
    "pairing.code_minted",
  ])
    log.audit(record(kind));
  assert.deepEqual(
    lines.map((l) => l.fields.kind),
    ["pairing.begin", "pairing.approved", "pairing.completed", "device.revoked", "node.registered"],
  );
  assert.equal(lines[0]?.message, "pairing begin");
  assert.deepEqual(lines[3]?.fields, {
    kind: "device.revoked",
    actor: "admin",
    device_id: "D",
    detail: { code_id: "ABCD" },
  });
  log.nodeDisconnected("D");
  assert.equal(lines.at(-1)?.message, "node disconnected");
});

test("refusals are rate limited, and the next line says how many were left out", () => {
  const { lines, logger } = capture();
  const clock = new ManualClock(0);
  const log = new OperationalLog(logger, clock);
  for (let i = 0; i < limits.refusalLogLinesPerWindow + 500; i++)
    log.refused({ reason: "unknown_certificate" }, "refused");
  assert.equal(lines.length, limits.refusalLogLinesPerWindow, "a flood does not reach the disk");
  clock.advance(limits.refusalLogWindowMs);
  log.refused({ reason: "unknown_certificate" }, "refused");
  assert.equal(lines.at(-1)?.fields.suppressed_before, 500);
});
