/**
 * SPNEGO (HTTP Negotiate) with MIT GSSAPI through the `kerberos` addon.
 * Host-based service name, mutual authentication requested, never credential delegation,
 * and a fresh security context (so a fresh, single-use token) for every request.
 */
import { unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AuthError, UsageError } from '../errors.js';

type KerberosModule = typeof import('kerberos');
let kerberosModule: Promise<KerberosModule> | undefined;

/** The addon reads KRB5CCNAME / KRB5_CLIENT_KTNAME at first use, so env must be final before this. */
function loadKerberos(): Promise<KerberosModule> {
  kerberosModule ??= import('kerberos').then(
    (m) => ((m as { default?: KerberosModule }).default ?? m) as KerberosModule,
  );
  return kerberosModule;
}

/**
 * `--spn` accepts `HTTP@host` (GSS host-based form) or `HTTP/host[@REALM]` (Kerberos form).
 * The addon imports names as host-based services, so both become `service@host`; the realm then
 * comes from krb5.conf's [domain_realm] mapping, as for every Hadoop client.
 */
export function resolveServiceName(spn: string | undefined, endpointHost: string): string {
  if (spn === undefined || spn === '') {
    const host = endpointHost.replace(/^\[|\]$/g, '').toLowerCase();
    return `HTTP@${host}`;
  }
  const kerberosForm = /^([^/@\s]+)\/([^/@\s]+)(?:@([^/@\s]+))?$/.exec(spn);
  if (kerberosForm) return `${kerberosForm[1]}@${kerberosForm[2]!.toLowerCase()}`;
  if (/^[^/@\s]+@[^/@\s]+$/.test(spn)) return spn;
  throw new UsageError(`invalid --spn '${spn}': expected HTTP@host or HTTP/host@REALM`);
}

/** The realm `--spn HTTP/host@REALM` names, if any. */
export function spnRealm(spn: string | undefined): string | undefined {
  return spn ? /^[^/@\s]+\/[^/@\s]+@([^/@\s]+)$/.exec(spn)?.[1] : undefined;
}

/**
 * Honour the realm of `--spn HTTP/host@REALM`. The addon imports host-based names only, whose realm
 * krb5.conf's [domain_realm] decides; KRB5_CONFIG is a search list in which the first file naming a
 * relation wins, so a one-line mapping put in front of the user's config pins the realm for this
 * process alone. The file holds no secret and is removed at exit.
 */
export function pinServiceRealm(env: NodeJS.ProcessEnv, host: string, realm: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(realm) || !/^[A-Za-z0-9._-]+$/.test(host))
    throw new UsageError(`invalid --spn realm or host '${host}@${realm}'`);
  // 'wx': a name someone else planted in the shared temp dir is never written through.
  const file = join(tmpdir(), `ozs3-krb5-${process.pid}-${Date.now().toString(36)}.conf`);
  writeFileSync(file, `[domain_realm]\n  ${host.toLowerCase()} = ${realm}\n`, { mode: 0o600, flag: 'wx' });
  process.once('exit', () => {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  });
  env.KRB5_CONFIG = `${file}:${env.KRB5_CONFIG || '/etc/krb5.conf'}`;
  return file;
}

export interface KeytabLogin {
  keytab: string;
  principal?: string | undefined;
}

/**
 * Keytab login without kinit: MIT GSSAPI acquires initial credentials from the client keytab
 * (KRB5_CLIENT_KTNAME) into a private MEMORY cache, so the user's ticket cache is neither read
 * nor written, and nothing lands on disk.
 */
export function prepareKeytabLogin(env: NodeJS.ProcessEnv, login: KeytabLogin, cwd: string): void {
  const keytab = /^[A-Z]+:/.test(login.keytab) ? login.keytab : `FILE:${resolve(cwd, login.keytab)}`;
  env.KRB5_CLIENT_KTNAME = keytab;
  // MEMORY caches live inside this process, so the pid alone keeps the name apart.
  env.KRB5CCNAME = `MEMORY:ozs3-${process.pid}`;
}

export interface Negotiation {
  /** The `Authorization` header value for one request. */
  readonly authorization: string;
  /**
   * Check the server's `WWW-Authenticate: Negotiate <token>` on a successful response: the mutual
   * authentication token. Returns whether one was present and verified; throws if it was bad.
   */
  verify(wwwAuthenticate: string | string[] | undefined): Promise<boolean>;
  /** The client principal, known once mutual authentication completed. */
  readonly principal: string | undefined;
}

export interface SpnegoOptions {
  service: string;
  principal?: string | undefined;
  keytab?: string | undefined;
  trace?: ((line: string) => void) | undefined;
}

export async function startNegotiation(opts: SpnegoOptions): Promise<Negotiation> {
  const krb = await loadKerberos();
  const trace = opts.trace ?? (() => {});
  let client: import('kerberos').KerberosClient;
  let token: string;
  try {
    client = await krb.initializeClient(opts.service, {
      ...(opts.principal ? { principal: opts.principal } : {}),
      flags: krb.GSS_C_MUTUAL_FLAG | krb.GSS_C_SEQUENCE_FLAG,
      mechOID: krb.GSS_MECH_OID_SPNEGO,
    } as import('kerberos').InitializeClientOptions);
    token = await client.step('');
  } catch (error) {
    throw mapGssError(error, opts);
  }
  trace(`kerberos: security context for ${opts.service} started (mutual authentication requested, no delegation)`);
  return {
    authorization: `Negotiate ${token}`,
    get principal() {
      return client.contextComplete && client.username ? client.username : undefined;
    },
    async verify(header) {
      const serverToken = extractNegotiateToken(header);
      if (serverToken === undefined) {
        trace('kerberos: server sent no mutual authentication token');
        return false;
      }
      try {
        await client.step(serverToken);
      } catch (error) {
        throw new AuthError(
          'KRB_MUTUAL_AUTH_FAILED',
          `mutual authentication failed: the server's Kerberos reply did not verify (${gssReason(error)}); its response was discarded`,
          { hint: 'the endpoint may not be the gateway it claims to be; check --endpoint and --spn', cause: error },
        );
      }
      if (!client.contextComplete) {
        throw new AuthError(
          'KRB_MUTUAL_AUTH_FAILED',
          'mutual authentication failed: the Kerberos handshake did not complete; the response was discarded',
        );
      }
      trace('kerberos: mutual authentication verified');
      return true;
    },
  };
}

export function extractNegotiateToken(header: string | string[] | undefined): string | undefined {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  for (const value of values) {
    for (const part of value.split(',')) {
      const m = /^\s*Negotiate\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(part);
      if (m) return m[1];
    }
  }
  return undefined;
}

function gssReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // "Unspecified GSS failure.  Minor code may provide more information: <the useful part>"
  const minor = /Minor code may provide more information:?\s*(.*)$/s.exec(message);
  const reason = (minor?.[1] ?? message).replace(/\s+/g, ' ').trim();
  return reason === '' ? message.trim() : reason;
}

/** Turn a GSSAPI failure into a message that names the cause and the fix. */
export function mapGssError(error: unknown, opts: Pick<SpnegoOptions, 'service' | 'keytab' | 'principal'>): AuthError {
  const reason = gssReason(error);
  const principalOf = (service: string) => service.replace('@', '/');
  const cause = { cause: error };
  if (/Server .*not found in Kerberos database|Server not found/i.test(reason)) {
    return new AuthError(
      'KRB_UNKNOWN_SERVER',
      `the KDC does not know the service principal ${principalOf(opts.service)} (${reason})`,
      {
        ...cause,
        hint: "use the gateway's canonical host name in --endpoint, or name the principal with --spn HTTP/<host>@<REALM>",
      },
    );
  }
  if (/expired/i.test(reason)) {
    return new AuthError('KRB_TICKET_EXPIRED', `your Kerberos ticket has expired (${reason})`, {
      ...cause,
      hint: opts.keytab
        ? 'check the keytab and the KDC'
        : 'run kinit to renew it, or log in with --keytab FILE --principal NAME',
    });
  }
  if (/Clock skew/i.test(reason)) {
    return new AuthError('KRB_CLOCK_SKEW', `the clock here and the KDC's differ too much (${reason})`, {
      ...cause,
      hint: 'synchronise the clock (NTP / chrony)',
    });
  }
  if (
    /Cannot (contact|find) any KDC|Cannot find KDC|unable to reach any KDC|Cannot resolve network address for KDC/i.test(
      reason,
    )
  ) {
    return new AuthError('KRB_KDC_UNREACHABLE', `cannot reach a Kerberos KDC (${reason})`, {
      ...cause,
      hint: 'check the [realms] section of krb5.conf (KRB5_CONFIG) and that the KDC is reachable',
    });
  }
  if (
    opts.keytab &&
    /keytab|Key table|no suitable keys|not found in Kerberos database|Client .* not found|Preauthentication failed|Password incorrect|No credentials were supplied|cannot find mechanisms/i.test(
      reason,
    )
  ) {
    return new AuthError(
      'KRB_KEYTAB_LOGIN_FAILED',
      `cannot log in from keytab ${opts.keytab}${opts.principal ? ` as ${opts.principal}` : ''} (${reason})`,
      {
        ...cause,
        hint: 'check with: klist -kt <keytab>; the principal must be in the keytab and its key version current',
      },
    );
  }
  if (
    /No Kerberos credentials|No credentials cache|credentials cache .*not found|No credentials were supplied|Can't find client principal|not found in credential cache/i.test(
      reason,
    )
  ) {
    return new AuthError('KRB_NO_TICKET', `no Kerberos ticket (${reason})`, {
      ...cause,
      hint: 'run kinit first, or log in with --keytab FILE --principal NAME',
    });
  }
  if (/Cannot find realm|Cannot determine realm|default realm/i.test(reason)) {
    return new AuthError('KRB_REALM', `cannot tell which Kerberos realm to use (${reason})`, {
      ...cause,
      hint: 'set default_realm and [domain_realm] in krb5.conf (KRB5_CONFIG), or use --spn HTTP/<host>@<REALM>',
    });
  }
  return new AuthError('KRB_GSS_FAILURE', `Kerberos failed: ${reason}`, {
    ...cause,
    hint: 'run with --verbose and KRB5_TRACE=/dev/stderr for details',
  });
}
