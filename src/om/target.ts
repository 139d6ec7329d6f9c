/**
 * Which OzoneManager(s) to talk to: one node (`--om host:port`) or an HA service's nodes
 * (`ozone.om.nodes.<id>`, `ozone.om.address.<id>.<node>`), and the OM principal pattern. The shape
 * matches the connection plan's (src/plan), so the plan's target can be passed as it is.
 */

export interface OmNode {
  /** The HA node id, absent for a single OM. The not-leader answer names the leader by it. */
  nodeId?: string | undefined;
  host: string;
  port: number;
}

export interface OmTargetSpec {
  serviceId?: string | undefined;
  nodes: readonly OmNode[];
  /** ozone.om.kerberos.principal, e.g. `om/_HOST@REALM`; default `om/<host>` with krb5.conf's realm. */
  principal?: string | undefined;
}

export function nodeAddress(node: OmNode): string {
  return `${node.host.includes(':') ? `[${node.host}]` : node.host}:${node.port}`;
}

export function nodeLabel(node: OmNode): string {
  return node.nodeId ? `${node.nodeId} (${nodeAddress(node)})` : nodeAddress(node);
}
