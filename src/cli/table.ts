/** Aligned columns with a header row; "(none)" for no rows. */
export function table(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return "(none)\n";
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? "").length)));
  const line = (cells: string[]) =>
    `${cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd()}\n`;
  return (
    line(columns.map((c) => c.replace(/_/g, " "))) +
    rows.map((r) => line(columns.map((c) => String(r[c] ?? "")))).join("")
  );
}
