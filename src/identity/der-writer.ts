/**
 * A small DER writer for what the CA signs: each function asserts its input and returns the complete
 * element (tag, minimal definite length, content) as a Buffer. Only the types our certificates use.
 */

const MAX_LENGTH = 0xffffff; // 3 length bytes: far more than any certificate part

/** The DER length octets of `length`: short form below 128, else the minimal long form. */
export function derLength(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0 || length > MAX_LENGTH)
    throw new RangeError("DER length out of range");
  if (length < 0x80) return Buffer.of(length);
  if (length <= 0xff) return Buffer.of(0x81, length);
  if (length <= 0xffff) return Buffer.of(0x82, length >> 8, length & 0xff);
  return Buffer.of(0x83, length >> 16, (length >> 8) & 0xff, length & 0xff);
}

/** One element: `tag` (a single byte) around the concatenated `contents`. */
export function der(tag: number, ...contents: readonly Uint8Array[]): Buffer {
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xff || (tag & 0x1f) === 0x1f)
    throw new RangeError("DER tag must be a single byte");
  let length = 0;
  for (const part of contents) length += part.length;
  return Buffer.concat([Buffer.of(tag), derLength(length), ...contents]);
}

export const derSequence = (...contents: readonly Uint8Array[]): Buffer => der(0x30, ...contents);
export const derSet = (...contents: readonly Uint8Array[]): Buffer => der(0x31, ...contents);
export const derOctetString = (bytes: Uint8Array): Buffer => der(0x04, bytes);
/** BOOLEAN TRUE (DER: 0xff). FALSE is never written: it is the default wherever we use booleans. */
export const DER_TRUE: Buffer = Buffer.of(0x01, 0x01, 0xff);

/** A non-negative INTEGER from its unsigned big-endian bytes (leading zeros dropped, sign byte added). */
export function derUnsignedInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const body = Buffer.from(bytes.subarray(start));
  if (body.length === 0) return Buffer.of(0x02, 0x01, 0x00);
  return (body[0] as number) & 0x80 ? der(0x02, Buffer.of(0), body) : der(0x02, body);
}

/** A BIT STRING of whole bytes (no unused bits). */
export function derBitString(bytes: Uint8Array): Buffer {
  return der(0x03, Buffer.of(0), bytes);
}

/** An OBJECT IDENTIFIER from dotted text ("2.5.29.19"). */
export function derOid(dotted: string): Buffer {
  if (!/^[0-2]\.(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/.test(dotted)) throw new RangeError("malformed OID");
  const arcs = dotted.split(".").map((arc) => BigInt(arc));
  const [first, second] = arcs as [bigint, bigint];
  if (first < 2n && second > 39n) throw new RangeError("malformed OID");
  const body: number[] = [];
  for (const arc of [first * 40n + second, ...arcs.slice(2)]) {
    const base128: number[] = [Number(arc & 0x7fn)];
    for (let rest = arc >> 7n; rest > 0n; rest >>= 7n) base128.unshift(Number(rest & 0x7fn) | 0x80);
    body.push(...base128);
  }
  return der(0x06, Buffer.from(body));
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]+$/;

/** PrintableString: only the characters X.680 allows in it (what our names are made of). */
export function derPrintableString(text: string): Buffer {
  if (typeof text !== "string" || !PRINTABLE.test(text))
    throw new RangeError("not a PrintableString (letters, digits, space and '()+,-./:=?)");
  return der(0x13, Buffer.from(text, "latin1"));
}

/** IA5String: 7-bit ASCII (DNS names and URIs in a SubjectAltName are IA5 content). */
export function ia5Bytes(text: string): Buffer {
  if (typeof text !== "string" || !/^[\x20-\x7e]*$/.test(text)) throw new RangeError("not printable ASCII");
  return Buffer.from(text, "latin1");
}

/** The first instant written as GeneralizedTime (RFC 5280 section 4.1.2.5: years from 2050). */
const GENERALIZED_FROM = Date.UTC(2050, 0, 1);
const UTC_TIME_FROM = Date.UTC(1950, 0, 1);

/**
 * A certificate validity time, to whole seconds (milliseconds dropped), as RFC 5280 requires: UTCTime
 * (YYMMDDHHMMSSZ) through 2049, GeneralizedTime (YYYYMMDDHHMMSSZ) from 2050 to 9999.
 */
export function derTime(date: Date): Buffer {
  const ms = date instanceof Date ? date.getTime() : Number.NaN;
  if (!Number.isFinite(ms) || ms < UTC_TIME_FROM || date.getUTCFullYear() > 9999)
    throw new RangeError("certificate dates must be from 1950 to 9999");
  const two = (n: number) => String(n).padStart(2, "0");
  const rest = `${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(
    date.getUTCMinutes(),
  )}${two(date.getUTCSeconds())}Z`;
  const year = date.getUTCFullYear();
  return ms >= GENERALIZED_FROM
    ? der(0x18, Buffer.from(`${year}${rest}`, "latin1"))
    : der(0x17, Buffer.from(`${two(year % 100)}${rest}`, "latin1"));
}
