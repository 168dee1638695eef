import assert from "node:assert/strict";
import { test } from "node:test";
import { BUILT_IN_CAPABILITIES, CapabilityError, checkOpenableUrl } from "./capabilities.js";

test("only plain http(s) URLs may be opened: no other scheme, no credentials, no fragment", () => {
  assert.equal(checkOpenableUrl("https://example.org/a?b=1").href, "https://example.org/a?b=1");
  for (const [url, why] of [
    ["file:///etc/passwd", /only http and https/],
    ["javascript:alert(1)", /only http and https/],
    ["https://user:pw@example.org/", /credentials/],
    ["https://example.org/#x", /fragment/],
    ["not a url", /not a valid URL/],
  ] as const)
    assert.throws(
      () => checkOpenableUrl(url),
      (err: Error) => err instanceof CapabilityError && why.test(err.message),
    );
  assert.throws(() => checkOpenableUrl(42), CapabilityError);
});

test("mediated capabilities ask for consent first and fail clearly when refused", async () => {
  const open = BUILT_IN_CAPABILITIES.find((c) => c.name === "desktop.open_url")!;
  assert.equal(open.requiresMediation, true);
  const asked: string[] = [];
  let awaiting = 0;
  await assert.rejects(
    open.run(
      { url: "https://example.org/" },
      {
        deviceId: "01JNODE0000000000000000001",
        signal: new AbortController().signal,
        consent: async (q) => {
          asked.push(q);
          return false;
        },
        awaitingMediation: () => {
          awaiting++;
        },
      },
    ),
    /denied by the node's local user or policy/,
  );
  assert.deepEqual(asked, ["Open https://example.org/?"]);
  assert.equal(awaiting, 1);
  const path = BUILT_IN_CAPABILITIES.find((c) => c.name === "desktop.open_path")!;
  const ctx = {
    deviceId: "x",
    signal: new AbortController().signal,
    consent: async () => true,
    awaitingMediation: () => {},
  };
  await assert.rejects(path.run({ path: "relative/path" }, ctx), /absolute path that exists/);
  await assert.rejects(path.run({ path: "/definitely/not/here" }, ctx), /absolute path that exists/);
});
