import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { BUILT_IN_CAPABILITIES } from "./capabilities.js";
import { loadCapabilityModules } from "./capability-modules.js";

const dir = mkdtempSync(join(tmpdir(), "palyra-capmod-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function moduleFile(name: string, source: string): string {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, source);
  return file;
}

const ctx = {
  deviceId: "01JDEVICE0000000000000000A",
  signal: new AbortController().signal,
  consent: async () => true,
  awaitingMediation: () => {},
};

test("an operator's module adds capabilities after the built-ins; sync and async run both work", async () => {
  const file = moduleFile(
    "good",
    `export const capabilities = [
      { name: "math.add", description: "adds", run: (i) => i.a + i.b },
      { name: "math.mul", run: async (i) => i.a * i.b, requiresMediation: true },
    ];`,
  );
  const all = await loadCapabilityModules([file], BUILT_IN_CAPABILITIES);
  assert.deepEqual(
    all.slice(BUILT_IN_CAPABILITIES.length).map((c) => [c.name, c.description, c.requiresMediation]),
    [
      ["math.add", "adds", false],
      ["math.mul", "", true],
    ],
  );
  assert.equal(await all.find((c) => c.name === "math.add")!.run({ a: 2, b: 3 }, ctx), 5);
  assert.equal(await all.find((c) => c.name === "math.mul")!.run({ a: 2, b: 3 }, ctx), 6);
});

test("bad modules fail at load with a message naming the file and the problem", async () => {
  const cases: [string, string, RegExp][] = [
    ["not-array", "export const capabilities = {};", /must export "capabilities"/],
    ["bad-name", 'export default [{ name: "Bad Name", run: () => 1 }];', /name must match/],
    ["clash", 'export default [{ name: "echo", run: () => 1 }];', /echo is already defined/],
    [
      "dup",
      'export default [{ name: "a", run: () => 1 }, { name: "a", run: () => 2 }];',
      /a is already defined/,
    ],
    ["no-run", 'export default [{ name: "a" }];', /run must be a function/],
    ["throws", 'throw new Error("boom");', /failed to load: boom/],
    ["null", "export default [null];", /is not an object/],
  ];
  for (const [name, source, message] of cases)
    await assert.rejects(
      loadCapabilityModules([moduleFile(name, source)], BUILT_IN_CAPABILITIES),
      (err: Error) => {
        assert.match(err.message, message, name);
        assert.ok(err.message.includes(name), "names the file");
        return true;
      },
    );
  await assert.rejects(loadCapabilityModules([join(dir, "missing.mjs")], []), /does not exist/);
});
