import assert from "node:assert/strict";
import { test } from "node:test";
import { onAbortUntil } from "./abort.js";

test("onAbortUntil: runs once on abort before the promise settles; at once if already aborted", async () => {
  const controller = new AbortController();
  let calls = 0;
  onAbortUntil(controller.signal, new Promise(() => {}), () => calls++);
  controller.abort();
  controller.abort();
  assert.equal(calls, 1);
  onAbortUntil(controller.signal, Promise.resolve(), () => calls++);
  assert.equal(calls, 2, "an aborted signal runs it at once");
  onAbortUntil(undefined, Promise.resolve(), () => calls++);
  assert.equal(calls, 2, "no signal, nothing to do");
});

test("onAbortUntil: after the promise settles (resolved or rejected) an abort runs nothing", async () => {
  const controller = new AbortController();
  let calls = 0;
  const resolved = Promise.resolve();
  const rejected = Promise.reject(new Error("failed"));
  onAbortUntil(controller.signal, resolved, () => calls++);
  onAbortUntil(controller.signal, rejected, () => calls++);
  await resolved;
  await rejected.catch(() => undefined);
  controller.abort();
  assert.equal(calls, 0);
});
