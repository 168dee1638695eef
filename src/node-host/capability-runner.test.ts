import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../common/clock.js";
import type { Capability } from "./capabilities.js";
import { CapabilityRunner } from "./capability-runner.js";

/** A capability whose calls finish only when the test says so (or when cancelled). */
function gated(onStart: () => void) {
  const open = new Map<string, () => void>();
  const started: string[] = [];
  const capability: Capability = {
    name: "gate",
    description: "",
    requiresMediation: false,
    run: (input, ctx) =>
      new Promise((resolve) => {
        const id = String(input);
        started.push(id);
        onStart();
        open.set(id, () => resolve(id));
        ctx.signal.addEventListener("abort", () => open.delete(id));
      }),
  };
  return { capability, open, started };
}

function setup(concurrency: number) {
  let notify: () => void = () => {};
  const gate = gated(() => notify());
  const sent: { case: string; requestId: string; success?: boolean }[] = [];
  const events: string[] = [];
  const runner = new CapabilityRunner({
    deviceId: "01JDEVICE0000000000000000A",
    capabilities: [gate.capability],
    consent: async () => true,
    concurrency,
    clock: new ManualClock(Date.now()),
    send: async (m) => {
      const body = m.body as { case: string; value: { requestId: string; success?: boolean } };
      sent.push({ case: body.case, requestId: body.value.requestId, success: body.value.success });
      notify();
    },
    onEvent: (kind, detail) => {
      events.push(`${kind} ${detail}`);
      notify();
    },
  });
  const until = (predicate: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (predicate()) resolve();
        else notify = check;
      };
      check();
    });
  const dispatch = (id: string) =>
    runner.dispatch({
      requestId: id,
      capability: "gate",
      inputJson: JSON.stringify(id),
      deadlineUnixMs: BigInt(Date.now() + 60_000),
    });
  return { runner, gate, sent, events, until, dispatch };
}

test("at most `concurrency` calls run; the next starts when one finishes, in arrival order", async () => {
  const { runner, gate, sent, until, dispatch } = setup(2);
  for (const id of ["a", "b", "c", "d"]) dispatch(id);
  await until(() => sent.filter((s) => s.case === "capabilityState").length === 2);
  assert.deepEqual(gate.started, ["a", "b"]);
  assert.equal(runner.running, 2);
  gate.open.get("a")!();
  await until(() => gate.started.length === 3);
  assert.deepEqual(gate.started, ["a", "b", "c"]);
  assert.ok(sent.some((s) => s.case === "capabilityResult" && s.requestId === "a" && s.success));
  runner.cancelAll();
});

test("Cancel aborts a running call (no result sent) and drops a queued one before it starts", async () => {
  const { runner, gate, sent, events, until, dispatch } = setup(1);
  dispatch("run");
  dispatch("queued");
  await until(() => gate.started.length === 1);
  runner.cancel("queued");
  runner.cancel("run");
  await until(() => events.some((e) => e.startsWith("cancelled run")));
  assert.deepEqual(gate.started, ["run"], "the queued call never started");
  assert.ok(events.some((e) => e.startsWith("cancelled queued")));
  assert.equal(sent.filter((s) => s.case === "capabilityResult").length, 0);
  dispatch("next");
  await until(() => gate.started.includes("next"));
  assert.deepEqual(gate.started, ["run", "next"], "the cancelled call's slot was freed");
  runner.cancelAll();
});

test("an unknown capability and bad input JSON end as failed results, not crashes", async () => {
  const { runner, sent, until } = setup(2);
  runner.dispatch({
    requestId: "x",
    capability: "nope",
    inputJson: "null",
    deadlineUnixMs: BigInt(Date.now() + 1e4),
  });
  runner.dispatch({
    requestId: "y",
    capability: "gate",
    inputJson: "{",
    deadlineUnixMs: BigInt(Date.now() + 1e4),
  });
  await until(() => sent.filter((s) => s.case === "capabilityResult").length === 2);
  assert.deepEqual(
    sent.filter((s) => s.case === "capabilityResult").map((s) => [s.requestId, s.success]),
    [
      ["x", false],
      ["y", false],
    ],
  );
});
