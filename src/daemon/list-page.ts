import { z } from "zod";
import { isCanonicalId } from "../common/ids.js";

/**
 * Paging for the admin API's lists (devices, nodes): ordered by id (a ULID, so roughly by pairing
 * time), `after` is the last id of the previous page, `q` a case-insensitive substring of the row's
 * searchable text. A list is built in memory and cut here: at ten thousand rows that costs a few
 * milliseconds, and a page never skips or repeats a row while rows are added or removed.
 */

export const PAGE_MAX = 1000;

export interface PageQuery {
  limit: number;
  after?: string;
  q?: string;
}

const querySchema = z.object({
  limit: z
    .string()
    .regex(/^\d{1,4}$/, "a whole number from 1 to 1000")
    .transform(Number)
    .refine((n) => n >= 1 && n <= PAGE_MAX, "a whole number from 1 to 1000")
    .optional(),
  after: z.string().refine(isCanonicalId, "a device id (canonical ULID) from the previous page").optional(),
  q: z.string().max(128, "at most 128 characters").optional(),
});

/** Reads `limit`, `after` and `q`; throws a ZodError (the API answers 400) on bad input. */
export function parsePageQuery(params: URLSearchParams): PageQuery {
  const parsed = querySchema.parse({
    ...(params.has("limit") ? { limit: params.get("limit") } : {}),
    ...(params.has("after") ? { after: params.get("after") } : {}),
    ...(params.get("q") ? { q: params.get("q") } : {}),
  });
  return {
    limit: parsed.limit ?? PAGE_MAX,
    ...(parsed.after === undefined ? {} : { after: parsed.after }),
    ...(parsed.q === undefined ? {} : { q: parsed.q.toLowerCase() }),
  };
}

export interface Page<T> {
  items: T[];
  /** The id to pass as `after` for the next page; null on the last page. */
  nextAfter: string | null;
  /** Rows matching `q` in all. */
  total: number;
}

export function pageOf<T>(
  rows: readonly T[],
  idOf: (row: T) => string,
  searchText: (row: T) => string,
  query: PageQuery,
): Page<T> {
  const q = query.q;
  const matching = (q ? rows.filter((r) => searchText(r).toLowerCase().includes(q)) : [...rows]).sort(
    (a, b) => (idOf(a) < idOf(b) ? -1 : idOf(a) > idOf(b) ? 1 : 0),
  );
  const after = query.after;
  let start = 0;
  if (after !== undefined) {
    // First row with an id above `after` (binary search: ids are sorted).
    let lo = 0;
    let hi = matching.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (idOf(matching[mid]!) <= after) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  const items = matching.slice(start, start + query.limit);
  const more = start + query.limit < matching.length;
  return { items, nextAfter: more ? idOf(items.at(-1)!) : null, total: matching.length };
}
