import { useCallback, useEffect, useState } from "react";
import { api } from "./api";
import { useResource } from "./live";

export interface AuditEvent {
  id: string;
  at: string;
  kind: string;
  actor: string;
  device_id?: string;
  detail: Record<string, unknown>;
}
interface AuditPage {
  events: AuditEvent[];
  /** The cursor for the next (older) page; null when this page was the last. */
  next_before: string | null;
}

export const AUDIT_PAGE_SIZE = 200;

/** `newest` first, then what is held beyond it in its order: events that slid out of it stay put. */
function merge(newest: AuditEvent[], held: AuditEvent[]): AuditEvent[] {
  const ids = new Set(newest.map((e) => e.id));
  return [...newest, ...held.filter((e) => !ids.has(e.id))];
}

/**
 * The audit log of one kind (all kinds when empty), newest first, a page at a time. The newest page is
 * live (refetched when events are written); older pages come on request, each after the oldest event
 * held (`before`), so new events arriving in between neither hide nor repeat any. Mount it afresh
 * (a `key`) when the kind changes.
 */
export function useAuditLog(kind: string) {
  const query = `limit=${AUDIT_PAGE_SIZE}${kind ? `&kind=${encodeURIComponent(kind)}` : ""}`;
  const newest = useResource<AuditPage>(`/v1/audit?${query}`, ["audit"]);
  const [held, setHeld] = useState<AuditEvent[]>([]);
  /** Whether there is more after the last older page; undefined until one was loaded. */
  const [olderMore, setOlderMore] = useState<boolean>();
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string>();
  useEffect(() => {
    if (newest.data) setHeld((prev) => merge(newest.data?.events ?? [], prev));
  }, [newest.data]);
  const events = merge(newest.data?.events ?? [], held);
  const last = events[events.length - 1];
  const more = newest.data !== undefined && (olderMore ?? newest.data.next_before !== null);
  const loadOlder = useCallback(async () => {
    if (!last) return;
    setLoading(true);
    setError(undefined);
    try {
      const page = await api<AuditPage>("GET", `/v1/audit?${query}&before=${last.id}`);
      setHeld((prev) => {
        const ids = new Set(prev.map((e) => e.id));
        return [...prev, ...page.events.filter((e) => !ids.has(e.id))];
      });
      setOlderMore(page.next_before !== null);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setLoading(false);
    }
  }, [last, query]);
  return {
    events,
    more,
    loading,
    loadOlder,
    error: error ?? newest.error,
    loaded: newest.data !== undefined,
  };
}
