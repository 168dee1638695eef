import { AdminClient } from "./admin-client.js";
import { closeDeviceStores, implicitRemoteNote, resolveGatewayTarget } from "./gateway-target.js";
import { type GatewayApi, RemoteOperatorClient } from "./operator-client.js";
import { checkStanding, operatorCredentials } from "./operator-credentials.js";

/** `--gateway` and `--state-root`, as every operator command takes them. */
export interface TargetFlags {
  gateway?: string;
  stateRoot?: string;
}

const open = new Set<RemoteOperatorClient>();

/** The client for the gateway this command targets (gateway-target.ts says which and why). */
export async function gatewayClient(flags: TargetFlags): Promise<GatewayApi> {
  const target = await resolveGatewayTarget(flags);
  if (target.kind === "local") return AdminClient.fromStateRoot(target.stateRoot);
  const note = implicitRemoteNote(target);
  if (note) process.stderr.write(`${note}\n`);
  const client = new RemoteOperatorClient(
    target.address,
    await operatorCredentials(target.stateRoot, target.address),
    () => checkStanding(target.stateRoot, target.address),
  );
  open.add(client);
  return client;
}

/** Closes the connections and device stores commands opened (main calls it when the command is over). */
export async function closeGatewayClients(): Promise<void> {
  for (const client of open) client.close();
  open.clear();
  await closeDeviceStores();
}

export const GATEWAY_OPTION_HELP =
  "talk to this gateway (host:port) with this state root's paired device instead of the local daemon (also PALYRA_GATEWAY; 'local' forces the local daemon)";
