/**
 * What an ozone-site.xml says about where the secrets are (docs/om-rpc.md, docs/endpoint.md): the
 * S3 Gateway's web admin address, and the OzoneManager (one address, or HA service ids, their node
 * ids and each node's address, as Ozone's OmUtils and OzoneAddress read them). Pure.
 */
import { UsageError } from '../errors.js';

export const OM_DEFAULT_PORT = 9862;

export interface OmNode {
  /** The HA node id (`ozone.om.nodes.<service>`), absent for a single OM. */
  nodeId?: string | undefined;
  host: string;
  port: number;
}

/** `host[:port]`, `[v6]:port`; undefined for wildcard listen addresses, which say nothing about where to connect. */
export function parseHostPort(text: string, defaultPort: number): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:[\]\s]+)(?::(\d{1,5}))?$/.exec(text.trim());
  if (!m) return undefined;
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (port < 1 || port > 65535 || host === '0.0.0.0' || host === '::' || host.includes('${')) return undefined;
  return { host, port };
}

function addressToUrl(scheme: 'https' | 'http', address: string | undefined): string | undefined {
  if (!address) return undefined;
  const m = /^([^:]+|\[[^\]]+\]):(\d+)$/.exec(address.trim());
  if (!m) return undefined;
  if (m[1] === '0.0.0.0' || m[1] === '[::]' || m[1]!.includes('${')) return undefined;
  return `${scheme}://${m[1]}:${m[2]}`;
}

/** The secret endpoint and the S3 data endpoint an ozone-site.xml names, if any. */
export function restFromOzoneSite(props: ReadonlyMap<string, string>): {
  endpoint?: string;
  key?: string;
  s3Endpoint?: string | undefined;
} {
  const s3Endpoint =
    addressToUrl('https', props.get('ozone.s3g.https-address')) ??
    addressToUrl('http', props.get('ozone.s3g.http-address'));
  const candidates: [string, 'https' | 'http'][] = [
    ['ozone.s3g.webadmin.https-address', 'https'],
    ['ozone.s3g.webadmin.http-address', 'http'],
    // Ozone 1.4.x serves /secret beside the S3 API.
    ['ozone.s3g.https-address', 'https'],
    ['ozone.s3g.http-address', 'http'],
  ];
  for (const [key, scheme] of candidates) {
    const endpoint = addressToUrl(scheme, props.get(key));
    if (endpoint) return { endpoint, s3Endpoint, key };
  }
  return { s3Endpoint };
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Whether the file names an OzoneManager at all (then `ozone s3 getsecret` would use it). */
export function namesOm(props: ReadonlyMap<string, string>): boolean {
  return list(props.get('ozone.om.service.ids')).length > 0 || Boolean(props.get('ozone.om.address')?.trim());
}

export interface OmFromSite {
  serviceId?: string | undefined;
  nodes: OmNode[];
  /** The keys the nodes came from, for `doctor` and `-v`. */
  keys: string;
}

/**
 * The OMs to talk to, by OzoneAddress.createClientForS3Commands' rule: an explicit service id must be
 * configured; without one, a single configured service (or `ozone.om.internal.service.id`) is used,
 * several are an error; no service ids means the single `ozone.om.address`.
 */
export function omFromOzoneSite(props: ReadonlyMap<string, string>, path: string, serviceId?: string): OmFromSite {
  const ids = list(props.get('ozone.om.service.ids'));
  let id = serviceId;
  if (id !== undefined && !ids.includes(id)) {
    throw new UsageError(`--om-service-id ${id}: not in ozone.om.service.ids of ${path} (${ids.join(', ') || 'none'})`);
  }
  if (id === undefined && ids.length > 0) {
    const internal = props.get('ozone.om.internal.service.id')?.trim();
    if (internal) id = internal;
    else if (ids.length === 1) id = ids[0];
    else {
      throw new UsageError(`${path} configures several OM services (${ids.join(', ')}): name one`, {
        hint: `--om-service-id ${ids[0]}`,
      });
    }
  }
  if (id === undefined) {
    const raw = props.get('ozone.om.address');
    const address = raw === undefined ? undefined : parseHostPort(raw, OM_DEFAULT_PORT);
    if (!address) throw new UsageError(`${path}: ozone.om.address '${raw ?? ''}' is not a host[:port] to connect to`);
    return { nodes: [address], keys: `ozone.om.address in ${path}` };
  }
  const nodeIds = list(props.get(`ozone.om.nodes.${id}`));
  if (nodeIds.length === 0) throw new UsageError(`${path}: ozone.om.nodes.${id} names no OM node`);
  const nodes = nodeIds.map((nodeId): OmNode => {
    const key = `ozone.om.address.${id}.${nodeId}`;
    const address = parseHostPort(props.get(key) ?? '', OM_DEFAULT_PORT);
    if (!address) throw new UsageError(`${path}: ${key} is missing or not a host[:port]`);
    return { nodeId, ...address };
  });
  return {
    serviceId: id,
    nodes,
    keys: `ozone.om.service.ids / ozone.om.nodes.${id} / ozone.om.address.${id}.* in ${path}`,
  };
}
