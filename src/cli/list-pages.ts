import type { Command } from "commander";
import { CommonError } from "../common/errors.js";
import { isCanonicalId } from "../common/ids.js";
import type { GatewayApi } from "./operator-client.js";

/** `--limit`, `--after` and `--search` of a paged list command. */
export interface PageFlags {
  limit?: string;
  after?: string;
  search?: string;
}

export function withPaging(cmd: Command): Command {
  return cmd
    .option("--limit <n>", "one page of at most this many (1-1000); without it, every row")
    .option("--after <id>", "the page after this id (the next_after of the previous page)")
    .option("--search <text>", "only rows whose id, name, platform or state contain this");
}

/**
 * Reads a paged admin list (`GET path?limit&after&q` answering `{[key]: rows, next_after, total}`).
 * With `--limit`, one page and where the next starts; without, every page in turn.
 */
export async function readPages<T>(
  client: GatewayApi,
  path: string,
  key: string,
  flags: PageFlags,
): Promise<{ rows: T[]; nextAfter: string | null; total: number }> {
  let limit: number | undefined;
  if (flags.limit !== undefined) {
    limit = Number(flags.limit);
    if (!/^\d+$/.test(flags.limit) || limit < 1 || limit > 1000)
      throw new CommonError("invalid_input", "--limit is a whole number from 1 to 1000");
  }
  if (flags.after !== undefined && !isCanonicalId(flags.after))
    throw new CommonError("invalid_input", "--after is an id (canonical ULID) from the previous page");
  if (flags.search !== undefined && flags.search.length > 128)
    throw new CommonError("invalid_input", "--search is at most 128 characters");
  const rows: T[] = [];
  let after = flags.after;
  for (;;) {
    const params = new URLSearchParams({ limit: String(limit ?? 1000) });
    if (after) params.set("after", after);
    if (flags.search) params.set("q", flags.search);
    const page = await client.request<Record<string, unknown>>("GET", `${path}?${params}`);
    rows.push(...(page[key] as T[]));
    const next = (page.next_after as string | null | undefined) ?? null;
    if (limit !== undefined || next === null) return { rows, nextAfter: next, total: page.total as number };
    after = next;
  }
}
