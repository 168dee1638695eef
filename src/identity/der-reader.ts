/**
 * A small DER reader for input from outside (CSRs) and for our own CA certificate. It reads framing
 * only: tags, definite minimal lengths, and children that exactly fill their parent. Every function
 * returns undefined for anything malformed instead of throwing, so callers turn that into their own
 * error. Single-byte tags only (nothing we read uses high tag numbers).
 */

export interface DerElement {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

export const DER_INTEGER = 0x02;
export const DER_BIT_STRING = 0x03;
export const DER_OCTET_STRING = 0x04;
export const DER_OID = 0x06;
export const DER_SEQUENCE = 0x30;
export const DER_SET = 0x31;
const CONSTRUCTED = 0x20;
/** Deeper nesting than this is never legitimate in a CSR or a certificate, and bounds the recursion. */
const MAX_DEPTH = 32;

/**
 * Reads the tag and definite length of the element at `offset`, which must end by `limit` (default: the
 * end of `bytes`). Undefined for indefinite BER lengths, non-minimal lengths and truncated elements.
 */
export function readDerElement(
  bytes: Uint8Array,
  offset: number,
  limit: number = bytes.length,
): DerElement | undefined {
  if (offset < 0 || offset + 2 > limit || limit > bytes.length) return undefined;
  const tag = bytes[offset] as number;
  if ((tag & 0x1f) === 0x1f) return undefined;
  const first = bytes[offset + 1] as number;
  let length = first;
  let contentStart = offset + 2;
  if (first >= 0x80) {
    const lengthBytes = first & 0x7f;
    // 0x80 is BER's indefinite length; more than 4 length bytes cannot describe anything we accept.
    if (lengthBytes === 0 || lengthBytes > 4 || contentStart + lengthBytes > limit) return undefined;
    if (bytes[contentStart] === 0) return undefined; // non-minimal length
    length = 0;
    for (let i = 0; i < lengthBytes; i++) length = length * 256 + (bytes[contentStart + i] as number);
    if (length < 0x80) return undefined; // long form for a short length is not DER
    contentStart += lengthBytes;
  }
  const end = contentStart + length;
  return end <= limit ? { tag, start: offset, contentStart, end } : undefined;
}

/**
 * The children of a constructed element, which must fill it exactly, each with the expected tag in
 * order (`tags.length` children, no more, no fewer). Undefined otherwise.
 */
export function readDerChildren(
  bytes: Uint8Array,
  parent: DerElement,
  tags: readonly number[],
): DerElement[] | undefined {
  const children: DerElement[] = [];
  let offset = parent.contentStart;
  for (const tag of tags) {
    const child = readDerElement(bytes, offset, parent.end);
    if (child?.tag !== tag) return undefined;
    children.push(child);
    offset = child.end;
  }
  return offset === parent.end ? children : undefined;
}

/** All children of a constructed element (at most `max`), which must fill it exactly; else undefined. */
export function listDerChildren(
  bytes: Uint8Array,
  parent: DerElement,
  max: number,
): DerElement[] | undefined {
  const children: DerElement[] = [];
  let offset = parent.contentStart;
  while (offset < parent.end) {
    const child = readDerElement(bytes, offset, parent.end);
    if (child === undefined || children.length === max) return undefined;
    children.push(child);
    offset = child.end;
  }
  return children;
}

/**
 * True when `bytes` is exactly one element (no trailing bytes) whose constructed parts, at every level,
 * are made of well-framed elements that fill them exactly. Primitive contents are not interpreted.
 */
export function isWellFormedDer(bytes: Uint8Array): boolean {
  const root = readDerElement(bytes, 0);
  return root !== undefined && root.end === bytes.length && wellFormed(bytes, root, 0);
}

function wellFormed(bytes: Uint8Array, element: DerElement, depth: number): boolean {
  if ((element.tag & CONSTRUCTED) === 0) return true;
  if (depth >= MAX_DEPTH) return false;
  let offset = element.contentStart;
  while (offset < element.end) {
    const child = readDerElement(bytes, offset, element.end);
    if (child === undefined || !wellFormed(bytes, child, depth + 1)) return false;
    offset = child.end;
  }
  return true;
}

/**
 * True when `bytes` is exactly one DER SEQUENCE with a definite length that covers the whole input
 * (no indefinite BER lengths, no truncation, no trailing bytes). Cheap, and done before any parsing.
 */
export function isSingleDerSequence(bytes: Uint8Array): boolean {
  const outer = readDerElement(bytes, 0);
  return outer !== undefined && outer.tag === DER_SEQUENCE && outer.end === bytes.length;
}

/** The whole element, tag and length included. */
export function derBytes(bytes: Uint8Array, element: DerElement): Uint8Array {
  return bytes.subarray(element.start, element.end);
}

/** The element's content only. */
export function derContent(bytes: Uint8Array, element: DerElement): Uint8Array {
  return bytes.subarray(element.contentStart, element.end);
}
