import assert from "node:assert/strict";
import { test } from "node:test";
import { ZodError } from "zod";
import { pageOf, parsePageQuery } from "./list-page.js";

const id = (n: number) => `01J${String(n).padStart(23, "0")}`;
const rows = Array.from({ length: 2500 }, (_, n) => ({
  id: id(n),
  name: n % 10 === 0 ? `Gpu-${n}` : `cpu-${n}`,
}));
const shuffled = [...rows].sort(() => Math.random() - 0.5);

test("pages cover every row once, in id order, whatever order the rows come in", () => {
  const seen: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = pageOf(
      shuffled,
      (r) => r.id,
      (r) => r.name,
      { limit: 1000, ...(after ? { after } : {}) },
    );
    assert.equal(page.total, 2500);
    seen.push(...page.items.map((r) => r.id));
    if (!page.nextAfter) break;
    after = page.nextAfter;
  }
  assert.deepEqual(
    seen,
    rows.map((r) => r.id),
  );
  // A cursor that is no row's id (the row was removed) still continues after it.
  const next = pageOf(
    shuffled,
    (r) => r.id,
    (r) => r.name,
    { limit: 2, after: `${id(41)}Z`.slice(0, 26) },
  );
  assert.ok(next.items.every((r) => r.id > id(41)));
});

test("q filters case-insensitively before paging; total counts the matches", () => {
  const page = pageOf(
    shuffled,
    (r) => r.id,
    (r) => r.name,
    { limit: 100, q: "gpu" },
  );
  assert.equal(page.total, 250);
  assert.equal(page.items.length, 100);
  assert.ok(page.items.every((r) => r.name.startsWith("Gpu-")));
  assert.equal(page.nextAfter, page.items.at(-1)!.id);
});

test("parsePageQuery: defaults, bounds, canonical cursor, bounded search text", () => {
  assert.deepEqual(parsePageQuery(new URLSearchParams()), { limit: 1000 });
  assert.deepEqual(parsePageQuery(new URLSearchParams("limit=5&q=GPU&after=01ARZ3NDEKTSV4RRFFQ69G5FAV")), {
    limit: 5,
    after: "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    q: "gpu",
  });
  for (const bad of ["limit=0", "limit=1001", "limit=-1", "limit=1e3", "after=nope", `q=${"x".repeat(129)}`])
    assert.throws(() => parsePageQuery(new URLSearchParams(bad)), ZodError, bad);
});
