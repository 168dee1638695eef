import { useEffect, useState } from "react";
import { type Resource, type Topic, useResource } from "./live";

/** Rows shown at first and added by each "Show more"; the API gives at most 1000 in one page. */
const STEP = 200;
const API_MAX = 1000;

export interface PagedList<T> {
  rows: T[];
  /** Rows matching the search on the gateway, shown or not. */
  total: number;
  search: string;
  setSearch: (value: string) => void;
  /** Shows more rows, when there are more and the page can grow. */
  more: (() => void) | undefined;
  /** More match than one page holds: narrow the search instead. */
  capped: boolean;
  resource: Resource<Record<string, unknown>>;
}

/**
 * A list the gateway pages and searches (`?limit&q`, answering `{[key]: rows, total}`): a fleet of ten
 * thousand nodes stays quick to load and render, and the search covers every row, not only those shown.
 */
export function usePagedList<T>(base: string, key: string, topics: Topic[]): PagedList<T> {
  const [search, setSearch] = useState("");
  const [query, setQuery] = useState("");
  const [limit, setLimit] = useState(STEP);
  // One request per pause in typing, not per key.
  useEffect(() => {
    const timer = setTimeout(() => setQuery(search.trim()), 250);
    return () => clearTimeout(timer);
  }, [search]);
  const params = new URLSearchParams({ limit: String(limit) });
  if (query) params.set("q", query);
  const resource = useResource<Record<string, unknown>>(`${base}?${params}`, topics);
  const rows = (resource.data?.[key] as T[] | undefined) ?? [];
  const total = (resource.data?.total as number | undefined) ?? rows.length;
  const more =
    rows.length < total && limit < API_MAX ? () => setLimit((l) => Math.min(API_MAX, l + STEP)) : undefined;
  return { rows, total, search, setSearch, more, capped: rows.length < total && limit >= API_MAX, resource };
}
