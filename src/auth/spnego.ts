/**
 * SPNEGO (HTTP Negotiate) with MIT GSSAPI through the `kerberos` addon.
 * Host-based service name, mutual authentication requested, never credential delegation,
 * and a fresh security context (so a fresh, single-use token) for every request.
 */
import { AuthError } from '../errors.js';
import { gssReason, mapGssError } from './causes.js';

type KerberosModule = typeof import('kerberos');
let kerberosModule: Promise<KerberosModule> | undefined;

/** The addon reads KRB5CCNAME / KRB5_CLIENT_KTNAME at first use, so env must be final before this. */
function loadKerberos(): Promise<KerberosModule> {
  kerberosModule ??= import('kerberos').then((m) => (m as { default?: KerberosModule }).default ?? m);
  return kerberosModule;
}

/** One request's security context: its token, and the check of the server's answer. */
export interface Negotiation {
  /** The `Authorization` header value for one request. */
  readonly authorization: string;
  /** The size of the token in bytes (large PACs make large tokens; gateways cap header sizes). */
  readonly tokenBytes: number;
  /**
   * Check the server's `WWW-Authenticate: Negotiate <token>` on a successful response: the mutual
   * authentication token. Returns whether one was present and verified; throws if it was bad.
   */
  verify(wwwAuthenticate: string | string[] | undefined): Promise<boolean>;
  /** The client principal, known once mutual authentication completed. */
  readonly principal: string | undefined;
}

/** Starts a fresh security context for the next request. The seam tests replace. */
export type Negotiator = () => Promise<Negotiation>;

export interface SpnegoOptions {
  /** GSS host-based service name, e.g. HTTP@s3g.example.com. */
  service: string;
  principal?: string | undefined;
  keytab?: string | undefined;
  trace?: ((line: string) => void) | undefined;
}

export function createSpnegoNegotiator(opts: SpnegoOptions): Negotiator {
  return () => startNegotiation(opts);
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
  const tokenBytes = Buffer.byteLength(token, 'base64');
  trace(
    `kerberos: security context for ${opts.service} started (token ${tokenBytes} bytes; mutual authentication requested, no delegation)`,
  );
  return {
    authorization: `Negotiate ${token}`,
    tokenBytes,
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

/** A `Negotiate` challenge carrying something after the scheme name. */
export function hasNegotiateParameter(header: string | string[] | undefined): boolean {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  return values.some((value) => /(^|,)\s*Negotiate\s+\S/i.test(value));
}
