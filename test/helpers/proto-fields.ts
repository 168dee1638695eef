import { type DescMessage, fromBinary, ScalarType } from "@bufbuild/protobuf";

/** A field's value in the vector file: bytes in hex, 64-bit integers and enums as numbers, text as is. */
export type ReadableValue = string | number | boolean;

/**
 * Decodes `bytes` as `schema` and lists every field (defaults included) under its protobuf name, in
 * field-number order. Only messages of scalar and enum fields are supported (all the pairing messages).
 */
export function readableFields(schema: DescMessage, bytes: Uint8Array): Record<string, ReadableValue> {
  const decoded = fromBinary(schema, bytes) as unknown as Record<string, unknown>;
  const out: Record<string, ReadableValue> = {};
  for (const field of [...schema.fields].sort((a, b) => a.number - b.number)) {
    const value = decoded[field.localName];
    if (field.fieldKind === "enum") out[field.name] = value as number;
    else if (field.fieldKind !== "scalar")
      throw new Error(`${schema.typeName}.${field.name}: only scalar and enum fields are supported`);
    else if (field.scalar === ScalarType.BYTES)
      out[field.name] = Buffer.from(value as Uint8Array).toString("hex");
    else if (typeof value === "bigint") out[field.name] = Number(value);
    else out[field.name] = value as string | number | boolean;
  }
  return out;
}
