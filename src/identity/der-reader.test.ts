import assert from "node:assert/strict";
import { test } from "node:test";
import { SeededRandom } from "../common/random.js";
import {
  derContent,
  isSingleDerSequence,
  isWellFormedDer,
  listDerChildren,
  readDerChildren,
  readDerElement,
} from "./der-reader.js";
import { der, derSequence } from "./der-writer.js";

const bytes = (h: string) => Buffer.from(h.replace(/\s/g, ""), "hex");

test("readDerElement: definite minimal lengths only, never past the end or the limit", () => {
  assert.deepEqual(readDerElement(bytes("0401ff"), 0), { tag: 4, start: 0, contentStart: 2, end: 3 });
  const long = der(0x04, Buffer.alloc(300));
  assert.deepEqual(readDerElement(long, 0), { tag: 4, start: 0, contentStart: 4, end: 304 });
  for (const bad of [
    "",
    "04",
    "0402ff", // truncated
    "3080000000", // BER indefinite length
    "04817f" + "00".repeat(127), // long form for a short length
    "0482007f" + "00".repeat(127), // non-minimal long form
    "0485" + "01".repeat(5), // five length bytes
    "1f0100", // high tag number
  ])
    assert.equal(readDerElement(bytes(bad), 0), undefined, bad);
  assert.equal(readDerElement(bytes("0401ff"), 0, 2), undefined);
  assert.equal(readDerElement(bytes("0401ff"), -1), undefined);
  assert.equal(readDerElement(bytes("0401ff"), 0, 9), undefined);
});

test("readDerChildren and listDerChildren: children must fill the parent exactly", () => {
  const seq = derSequence(bytes("020101"), bytes("0400"));
  const outer = readDerElement(seq, 0)!;
  const kids = readDerChildren(seq, outer, [0x02, 0x04])!;
  assert.equal(kids.length, 2);
  assert.deepEqual(derContent(seq, kids[0]!), bytes("01"));
  assert.equal(readDerChildren(seq, outer, [0x02]), undefined); // one left over
  assert.equal(readDerChildren(seq, outer, [0x02, 0x04, 0x05]), undefined); // one missing
  assert.equal(readDerChildren(seq, outer, [0x04, 0x02]), undefined); // wrong order
  assert.equal(listDerChildren(seq, outer, 2)?.length, 2);
  assert.equal(listDerChildren(seq, outer, 1), undefined);
  // A child that would run past its parent (though not past the input).
  const overrun = bytes("3003 020201 00");
  assert.equal(listDerChildren(overrun, readDerElement(overrun, 0)!, 5), undefined);
});

test("isWellFormedDer: every constructed level is well framed, no trailing bytes, bounded depth", () => {
  assert.ok(isWellFormedDer(derSequence(derSequence(bytes("0500")), der(0xa0, bytes("020100")))));
  assert.ok(isWellFormedDer(bytes("0403 3002ff"))); // primitive content is not interpreted
  assert.equal(isWellFormedDer(bytes("3004 3003 0500")), false); // inner element overruns
  assert.equal(isWellFormedDer(bytes("3002 0500 00")), false); // trailing byte
  assert.equal(isWellFormedDer(bytes("3003 050000")), false); // garbage inside
  let deep: Buffer = bytes("0500");
  for (let i = 0; i < 40; i++) deep = derSequence(deep);
  assert.equal(isWellFormedDer(deep), false);
  assert.ok(isSingleDerSequence(bytes("3000")));
  assert.equal(isSingleDerSequence(bytes("0400")), false);
});

test("fuzz: random and mutated inputs never throw", () => {
  const random = new SeededRandom("der-reader-fuzz");
  const sample = derSequence(derSequence(bytes("020101"), der(0xa0, bytes("0400"))), bytes("03020000"));
  for (let i = 0; i < 2000; i++) {
    const input = i % 2 === 0 ? random.bytes(1 + (i % 64)) : Buffer.from(sample);
    if (i % 2 === 1) input[random.bytes(1)[0]! % input.length] = random.bytes(1)[0]!;
    isWellFormedDer(input);
    const el = readDerElement(input, 0);
    if (el) listDerChildren(input, el, 8);
  }
});
