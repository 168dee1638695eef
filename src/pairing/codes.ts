import type { Random } from "../common/random.js";
import { randomInt } from "../common/random.js";
import { PairingError } from "./errors.js";

/**
 * Pairing code material. The code id names a code (not secret); the PIN or QR secret is the password
 * for SPAKE2+ and is shown once, never stored.
 */

export type PairingMethod = "pin" | "qr";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_ID = /^[0-9A-HJKMNP-TV-Z]{4}$/;
const PIN = /^[0-9]{6}$/;
const WEAK_PINS = new Set(["123456", "654321"]);

export function newCodeId(random: Random): string {
  let id = "";
  for (let i = 0; i < 4; i++) id += CROCKFORD[randomInt(random, 32)];
  return id;
}

export function isCodeId(value: string): boolean {
  return CODE_ID.test(value);
}

/** A uniform 6-digit PIN, re-drawn when trivially guessable (all one digit, 123456, 654321). */
export function newPin(random: Random): string {
  for (;;) {
    const pin = String(randomInt(random, 1_000_000)).padStart(6, "0");
    if (!WEAK_PINS.has(pin) && !/^(\d)\1{5}$/.test(pin)) return pin;
  }
}

/** 16 random bytes, base64url: the QR code's secret. */
export function newQrSecret(random: Random): string {
  return random.bytes(16).toString("base64url");
}

/** Parses what a person types: `7QX2-482193` (code id and PIN), or a bare PIN. Case and spaces forgiven. */
export function parseTypedCode(input: string): { codeId?: string; pin: string } {
  const cleaned = input.trim().toUpperCase().replace(/\s+/g, "");
  const match = /^(?:([0-9A-Z]{4})-?)?([0-9]{6})$/.exec(cleaned);
  if (!match || (match[1] !== undefined && !isCodeId(match[1])))
    throw new PairingError(
      "invalid_input",
      "a pairing code looks like 7QX2-482193 (code id, dash, 6-digit PIN)",
    );
  return match[1] === undefined ? { pin: match[2]! } : { codeId: match[1], pin: match[2]! };
}

export function isPin(value: string): boolean {
  return PIN.test(value);
}
