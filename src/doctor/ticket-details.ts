/**
 * What the KDC issued, as a gateway sees it: the service ticket's encryption types (JDK 17+
 * acceptors refuse RC4), the size of the SPNEGO token (gateways cap header sizes), and whether the
 * client name is the one the KDC keeps (AD takes any case at kinit, and enterprise names unescaped).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rc4Fix } from '../auth/causes.js';
import { findServiceTicket, isRc4, parseKlist, runTool } from '../auth/klist.js';
import { HEADER_LIMITS, authorizationHeaderBytes } from '../rest/answers.js';
import { ok, skip, warn, type CheckResult } from './check.js';
import type { DoctorContext } from './context.js';
import type { Credentials } from './credentials.js';

export interface TicketTypes {
  sessionKeyType: string;
  ticketType: string;
  /** The ticket's server name as the cache holds it (with the realm the KDC gave). */
  server: string;
}

/**
 * The service ticket's types, from `klist -e`: in the user's cache (where GSSAPI just stored it),
 * or for a keytab login in a throwaway cache filled by kinit -k and kvno.
 */
export async function serviceTicketTypes(
  ctx: DoctorContext,
  creds: Credentials,
  principal: string,
): Promise<TicketTypes | undefined> {
  const timeout = ctx.timeoutMs;
  const find = (stdout: string) => {
    const ticket = findServiceTicket(parseKlist(stdout), principal);
    return ticket?.sessionKeyType && ticket.ticketType
      ? { sessionKeyType: ticket.sessionKeyType, ticketType: ticket.ticketType, server: ticket.server }
      : undefined;
  };
  if (creds.mode === 'ticket') {
    const listed = await runTool('klist', ['-e'], ctx.deps.env, timeout);
    return listed.code === 0 ? find(listed.stdout) : undefined;
  }
  if (!creds.keytab || !creds.principal) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'ozs3-doctor-'));
  try {
    const cache = `FILE:${join(dir, 'cc')}`;
    const env = { ...ctx.userEnv, KRB5CCNAME: cache };
    const login = await runTool('kinit', ['-k', '-t', creds.keytab.name, creds.principal], env, timeout);
    if (login.code !== 0) return undefined;
    await runTool('kvno', [principal], env, timeout);
    const listed = await runTool('klist', ['-e'], env, timeout);
    return listed.code === 0 ? find(listed.stdout) : undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function checkServiceTicket(
  principal: string,
  types: TicketTypes | undefined,
  tokenBytes: number | undefined,
  name = 'service ticket',
): CheckResult {
  const parts: string[] = [];
  const warnings: { detail: string; fix: string }[] = [];
  if (types) {
    // A principal given without its realm (the OM path's default) is shown as the KDC named it.
    const shown = principal.includes('@') ? principal : types.server;
    parts.push(`${shown}: ticket ${types.ticketType}, session key ${types.sessionKeyType}`);
    if (isRc4(types)) {
      warnings.push({ detail: 'RC4, which JDK 17+ acceptors (Ozone, Hadoop) refuse', fix: rc4Fix(shown) });
    }
  } else {
    parts.push(`${principal}: encryption types not listed (klist -e could not show the ticket)`);
  }
  if (tokenBytes !== undefined) {
    const header = authorizationHeaderBytes(tokenBytes);
    parts.push(`SPNEGO token ${tokenBytes} bytes (Authorization header ${header} bytes)`);
    const over = HEADER_LIMITS.filter((l) => header > l.bytes);
    if (over.length > 0) {
      warnings.push({
        detail: `over ${over.map((l) => `${l.who}: ${l.bytes}`).join('; ')}`,
        fix: 'a token this large comes from many AD groups (the PAC): ask the gateway admins to raise the limit (hadoop.http.max.request.header.size; Apache: LimitRequestFieldSize), use a principal in fewer groups, or the OM RPC (--om HOST)',
      });
    }
  }
  const detail = parts.join('; ');
  if (warnings.length === 0) return types || tokenBytes !== undefined ? ok(name, detail) : skip(name, detail);
  return warn(name, `${detail}: ${warnings.map((w) => w.detail).join('; ')}`, warnings.map((w) => w.fix).join('; '));
}

/**
 * The client name as Ozone will use it: an enterprise name's escape (`carol.smith\@corp@REALM`, a
 * `kinit -E` without `-C`) or capitals AD accepted at kinit become a different access id than the
 * name the KDC keeps.
 */
export function checkClientName(principal: string | undefined): CheckResult {
  const name = 'client name';
  if (!principal) return skip(name, 'no client principal known (see above)');
  if (principal.includes('\\@')) {
    return warn(
      name,
      `${principal} is an enterprise name as typed (kinit -E without -C): gateways and OMs take it as an access id of its own, and Hadoop's auth_to_local rules may not map it at all`,
      `kinit -C -E ${principal.replace(/\\@/, '@').replace(/@[^@]+$/, '')}: the KDC then issues the ticket in your canonical name`,
    );
  }
  const primary = principal.slice(0, principal.lastIndexOf('@'));
  if (/[A-Z]/.test(primary)) {
    return warn(
      name,
      `${principal} has capitals: Ozone compares access ids exactly, so this is another user than ${primary.toLowerCase()}${principal.slice(primary.length)} (AD takes any case at kinit)`,
      `if the KDC keeps the name in lower case: kinit -C ${principal} (klist then shows the KDC's own spelling)`,
    );
  }
  return ok(name, `${principal}: the access id Ozone will see`);
}
