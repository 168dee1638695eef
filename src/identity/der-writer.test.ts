import assert from "node:assert/strict";
import { test } from "node:test";
import {
  der,
  derLength,
  derOid,
  derPrintableString,
  derSequence,
  derTime,
  derUnsignedInteger,
  ia5Bytes,
} from "./der-writer.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

test("lengths: short form below 128, minimal long form above, absurd lengths refused", () => {
  assert.equal(hex(derLength(0)), "00");
  assert.equal(hex(derLength(127)), "7f");
  assert.equal(hex(derLength(128)), "8180");
  assert.equal(hex(derLength(255)), "81ff");
  assert.equal(hex(derLength(256)), "820100");
  assert.equal(hex(derLength(65_536)), "83010000");
  for (const bad of [-1, 1.5, 0x1000000, Number.NaN]) assert.throws(() => derLength(bad), RangeError);
  assert.equal(hex(der(0x04, Buffer.alloc(200))).slice(0, 6), "0481c8");
  assert.equal(hex(derSequence()), "3000");
  assert.throws(() => der(0x1f), RangeError);
  assert.throws(() => der(0x100), RangeError);
});

test("unsigned integers: leading zeros dropped, a zero byte added when the top bit is set", () => {
  assert.equal(hex(derUnsignedInteger(Buffer.of(0x02))), "020102");
  assert.equal(hex(derUnsignedInteger(Buffer.of(0, 0, 0x7f))), "02017f");
  assert.equal(hex(derUnsignedInteger(Buffer.of(0x80))), "02020080");
  assert.equal(hex(derUnsignedInteger(Buffer.of(0, 0))), "020100");
  assert.equal(hex(derUnsignedInteger(Buffer.alloc(0))), "020100");
});

test("OIDs match their well-known encodings; malformed text is refused", () => {
  assert.equal(hex(derOid("1.2.840.10045.4.3.2")), "06082a8648ce3d040302");
  assert.equal(hex(derOid("2.5.29.19")), "0603551d13");
  assert.equal(hex(derOid("1.3.6.1.5.5.7.3.2")), "06082b06010505070302");
  assert.equal(hex(derOid("1.2.840.10045.3.1.7")), "06082a8648ce3d030107");
  assert.equal(hex(derOid("2.999.3")), "0603883703");
  for (const bad of ["", "1", "3.1", "1.40", "1.2.", "1..2", "1.02", "a.b"])
    assert.throws(() => derOid(bad), RangeError, bad);
});

test("strings: PrintableString and IA5 content refuse characters outside their sets", () => {
  assert.equal(hex(derPrintableString("Palyra")), `1306${Buffer.from("Palyra").toString("hex")}`);
  for (const bad of ["", "a*b", "é", "a@b", "a\nb", 5 as unknown as string])
    assert.throws(() => derPrintableString(bad), RangeError);
  assert.equal(ia5Bytes("urn:palyra:device:X").toString(), "urn:palyra:device:X");
  assert.throws(() => ia5Bytes("ü"), RangeError);
  assert.throws(() => ia5Bytes("a\u0000"), RangeError);
});

test("times: UTCTime through 2049, GeneralizedTime from 2050, whole seconds", () => {
  const text = (d: Date) => {
    const b = derTime(d);
    return `${b[0]?.toString(16)}:${b.subarray(2).toString("latin1")}`;
  };
  assert.equal(text(new Date("2026-06-01T12:34:56.789Z")), "17:260601123456Z");
  assert.equal(text(new Date("1950-01-01T00:00:00Z")), "17:500101000000Z");
  assert.equal(text(new Date("2049-12-31T23:59:59.999Z")), "17:491231235959Z");
  assert.equal(text(new Date("2050-01-01T00:00:00Z")), "18:20500101000000Z");
  assert.equal(text(new Date("9999-12-31T23:59:59Z")), "18:99991231235959Z");
  for (const bad of [
    new Date("1949-12-31T23:59:59Z"),
    new Date(Number.NaN),
    new Date("+010000-01-01T00:00:00Z"),
  ])
    assert.throws(() => derTime(bad), RangeError);
  assert.throws(() => derTime("2026-01-01" as unknown as Date), RangeError);
});
