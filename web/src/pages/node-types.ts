/** The admin API's views of nodes, as the Nodes page reads them. */

export interface Capability {
  name: string;
  requires_mediation: boolean;
  description: string;
}
export interface NodeSummary {
  device_id: string;
  presence: "online" | "stale" | "offline";
  platform: string;
  version: string;
  capabilities: Capability[];
  last_seen_at: string;
  device_name?: string | null;
}
export interface NodeDetail extends NodeSummary {
  in_flight: number;
  device: { device_name: string; state: string } | null;
  recent_requests: {
    request_id: string;
    capability: string;
    state: string;
    created_at: string;
    finished_at: string | null;
    error: string | null;
  }[];
}
