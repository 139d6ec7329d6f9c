/**
 * The OM's service principal: from `ozone.om.kerberos.principal` (`om/_HOST@REALM`, `_HOST` = the
 * OM host exactly as configured, lower-cased as Hadoop's SecurityUtil does; never reverse DNS), or
 * `om/<host>` with the realm from krb5.conf. Checked against what the server advertises in its SASL
 * NEGOTIATE (`protocol/serverId`), as Hadoop's SaslRpcClient.getServerPrincipal does.
 */
import { AuthError, UsageError, sanitizeText } from '../errors.js';
import type { ServiceNameType } from './gssapi.js';

export interface ServicePrincipal {
  service: string;
  host: string;
  realm?: string | undefined;
}

const PATTERN = /^([^/@\s]+)\/([^/@\s]+)(?:@([^/@\s]+))?$/;

export function resolveServicePrincipal(pattern: string | undefined, omHost: string): ServicePrincipal {
  const host = omHost.replace(/^\[|\]$/g, '').toLowerCase();
  if (pattern === undefined || pattern === '') return { service: 'om', host };
  const m = PATTERN.exec(pattern.trim());
  if (!m) {
    throw new UsageError(`invalid OM principal '${sanitizeText(pattern)}': expected om/HOST@REALM or om/_HOST@REALM`);
  }
  return { service: m[1]!, host: m[2] === '_HOST' ? host : m[2]!, realm: m[3] };
}

export function principalText(p: ServicePrincipal): string {
  return `${p.service}/${p.host}${p.realm ? `@${p.realm}` : ''}`;
}

/** A full principal when the realm is known; else the host-based name, whose realm krb5.conf maps. */
export function gssTarget(p: ServicePrincipal): { target: string; targetType: ServiceNameType } {
  return p.realm
    ? { target: principalText(p), targetType: 'principal' }
    : { target: `${p.service}@${p.host}`, targetType: 'host-based' };
}

/** The server's `protocol/serverId` must name the principal we ask the KDC a ticket for. */
export function checkAdvertised(p: ServicePrincipal, protocol: string, serverId: string, address: string): void {
  if (protocol === p.service && serverId === p.host) return;
  const advertised = sanitizeText(`${protocol}/${serverId}`, 120);
  throw new AuthError(
    'OM_PRINCIPAL_MISMATCH',
    `the OM at ${address} runs as ${advertised}, but ozs3 expected ${principalText(p)}`,
    {
      hint: `connect to the OM by the host name in its principal, or set ozone.om.kerberos.principal (--spn ${advertised}${p.realm ? `@${p.realm}` : ''})`,
    },
  );
}
