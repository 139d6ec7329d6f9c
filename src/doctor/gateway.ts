/**
 * Checks 6-7 and the gateway login: what the endpoint answers to requests that change nothing.
 *
 * What Ozone answers to a GET /secret without a token (S3GatewayWebAdminServer): it maps Hadoop's
 * AuthenticationFilter (Kerberos) on /secret/* only when ozone.s3g.secret.http.enabled is true, and
 * refuses to start with the endpoint enabled but Kerberos off. So: enabled → 401 with
 * `WWW-Authenticate: Negotiate`, before Jersey looks at the method; disabled → no filter, Jersey
 * matches the path and answers 405 (the resource has only PUT and DELETE). With a token, the
 * filter verifies it (and sends its mutual-authentication token) before Jersey's 405: the login
 * can be checked without creating or revoking anything.
 */
import type { Dispatcher } from 'undici';
import { ExitCode, Ozs3Error, sanitizeText } from '../errors.js';
import { extractNegotiateToken, type Negotiation } from '../auth/spnego.js';
import { explainAcceptorFailure } from '../auth/causes.js';
import { krbErrorFromChallenge, type KrbError } from '../auth/krb-error.js';
import { ADMIN_ONLY_HINT, headerLimitCause } from '../rest/answers.js';
import { HADOOP_IPC, hadoopRpcPort, mapNetworkError } from '../http/causes.js';
import { fail, ok, skip, warn, type CheckResult } from './check.js';
import { PORT_HINT, endpointPort } from './network.js';

const MAX_PROBE_BODY = 16 * 1024;

export interface Probe {
  status: number;
  reason: string;
  headers: Record<string, string | string[] | undefined>;
  /** The first 16 KiB of the body. */
  body: string;
  sentAt: number;
  receivedAt: number;
}

function header(probe: Probe, name: string): string | undefined {
  const value = probe.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

export async function sendProbe(
  dispatcher: Dispatcher,
  endpoint: URL,
  method: 'GET' | 'DELETE',
  path: string,
  authorization: string | undefined,
  timeoutMs: number,
  trace?: (line: string) => void,
): Promise<Probe> {
  const headers: Record<string, string> = { 'user-agent': 'ozs3-doctor', accept: '*/*' };
  if (authorization) headers.authorization = authorization;
  trace?.(`> ${method} ${endpoint.origin}${path}`);
  trace?.(`> authorization: ${authorization ? 'Negotiate <redacted>' : '(none)'}`);
  const signal = AbortSignal.timeout(timeoutMs);
  const sentAt = Date.now();
  try {
    const res = await dispatcher.request({
      origin: endpoint.origin,
      path,
      method,
      headers,
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= MAX_PROBE_BODY) {
        res.body.destroy();
        break;
      }
    }
    const receivedAt = Date.now();
    trace?.(
      `< ${res.statusCode} ${sanitizeText(res.statusText ?? '')}${res.headers['www-authenticate'] ? ' (www-authenticate: Negotiate …)' : ''}`,
    );
    return {
      status: res.statusCode,
      reason: res.statusText ?? '',
      headers: res.headers,
      body: Buffer.concat(chunks).toString('utf8').slice(0, MAX_PROBE_BODY),
      sentAt,
      receivedAt,
    };
  } catch (error) {
    if (error instanceof Ozs3Error) throw error;
    throw mapNetworkError(error, endpoint, signal.aborted, timeoutMs);
  }
}

/** An Ozs3Error from a probe as a failed check line (network → 7, malformed answer → 8). */
export function probeFailure(name: string, error: unknown, endpoint: URL): CheckResult {
  if (!(error instanceof Ozs3Error)) throw error;
  let fix = error.hint;
  if (endpoint.protocol === 'http:' && /ECONNRESET|MALFORMED_HTTP|NETWORK/.test(error.code)) {
    fix = `the port may speak TLS: try https://${endpoint.host}`;
  }
  return fail(name, error.exitCode, error.message, fix ?? 'check --endpoint and the network path to the gateway');
}

function isHtml(probe: Probe): boolean {
  return /html/i.test(header(probe, 'content-type') ?? '') || /^\s*<(!doctype html|html)/i.test(probe.body);
}

const DISABLED = /S3 Secret endpoint is disabled/i;
const DISABLED_FIX =
  'an Ozone admin must set ozone.s3g.secret.http.enabled=true on the S3 Gateway (ozone-site.xml) and restart it';

/** Whether the answer is Hadoop's Kerberos challenge: the endpoint is enabled and SPNEGO-protected. */
export function isNegotiateChallenge(probe: Probe): boolean {
  return probe.status === 401 && /\bNegotiate\b/i.test(header(probe, 'www-authenticate') ?? '');
}

function notFoundFix(endpoint: URL): string {
  const port = endpointPort(endpoint);
  const swap: Record<number, number> = { 9878: 19878, 9879: 19879, 19878: 9878, 19879: 9879 };
  const other = swap[port];
  return other ? `${PORT_HINT}: try port ${other}` : PORT_HINT;
}

/** Check 7: an unauthenticated GET /secret. */
export function classifyAnonymous(probe: Probe, endpoint: URL): CheckResult {
  const name = 'gateway';
  const where = `${endpoint.origin}${endpoint.pathname}`;
  const status = `${probe.status}${probe.reason ? ` ${sanitizeText(probe.reason, 80)}` : ''}`;
  const challenge = header(probe, 'www-authenticate') ?? '';
  const server = header(probe, 'server');
  const serverNote = server ? ` (server: ${sanitizeText(server, 60)})` : '';
  if (probe.status === 401) {
    if (/\bNegotiate\b/i.test(challenge)) {
      return ok(
        name,
        `GET ${where} without a token: 401 with WWW-Authenticate: Negotiate — the secret endpoint is on and Kerberos (SPNEGO) protected${serverNote}`,
      );
    }
    const scheme = sanitizeText(challenge.split(/[\s,]/)[0] || 'no', 30);
    return fail(
      name,
      ExitCode.response,
      `GET ${where}: 401 asking for ${scheme} authentication, not Negotiate: not an Ozone secret endpoint${serverNote}`,
      `check --endpoint: ${PORT_HINT}`,
    );
  }
  if (probe.status === 400 && DISABLED.test(probe.body))
    return fail(name, ExitCode.response, `GET ${where}: 400 S3 Secret endpoint is disabled.`, DISABLED_FIX);
  if (probe.status === 404 && HADOOP_IPC.test(probe.body)) {
    const cause = hadoopRpcPort(endpoint);
    return fail(name, cause.exitCode, cause.message, cause.hint);
  }
  if (probe.status === 404)
    return fail(
      name,
      ExitCode.response,
      `nothing at ${where} (404): not the secret endpoint${serverNote}`,
      notFoundFix(endpoint),
    );
  if (probe.status === 403) {
    return warn(
      name,
      `GET ${where} without a token: 403${serverNote}`,
      'on Ozone 2.x with authorization on, the whole endpoint is admin-only: ask to be added to ozone.s3.administrators',
    );
  }
  if (probe.status >= 300 && probe.status < 400) {
    const location = sanitizeText(header(probe, 'location') ?? '(no Location)', 200);
    return fail(
      name,
      ExitCode.response,
      `${where} redirects (${status}) to ${location}; ozs3 does not follow redirects with Kerberos credentials`,
      'use the final URL as --endpoint if you trust it',
    );
  }
  if (probe.status >= 500)
    return fail(
      name,
      ExitCode.response,
      `the gateway failed: ${status}${serverNote}`,
      'look at the S3 Gateway log; try again later',
    );
  if (probe.status === 405) {
    const allow = header(probe, 'allow');
    const allowNote = allow ? ` (Allow: ${sanitizeText(allow, 60)})` : '';
    // Jersey's 405 names the resource's methods: PUT and DELETE are the secret endpoint's.
    if (/PUT|DELETE/i.test(allow ?? '')) {
      return fail(
        name,
        ExitCode.response,
        `GET ${where} without a token reached the secret resource: ${status}${allowNote}, no Kerberos challenge — the S3 secret endpoint is disabled (the gateway guards /secret with Kerberos only when ozone.s3g.secret.http.enabled is true)`,
        DISABLED_FIX,
      );
    }
  }
  if (isHtml(probe)) {
    return fail(
      name,
      ExitCode.response,
      `GET ${where} without a token: ${status} with an HTML page — not an Ozone secret endpoint${serverNote}`,
      `check --endpoint: ${PORT_HINT}`,
    );
  }
  return warn(
    name,
    `GET ${where} without a token: unexpected ${status}${serverNote}`,
    'an Ozone secret endpoint answers 401 with WWW-Authenticate: Negotiate; check --endpoint',
  );
}

/** Check 6: the gateway's clock (its Date header) against ours. Kerberos allows 300 s by default. */
export function checkClock(probe: Probe): CheckResult {
  const name = 'clock';
  const date = header(probe, 'date');
  const serverTime = date ? Date.parse(date) : Number.NaN;
  if (Number.isNaN(serverTime))
    // Nothing is wrong, only unmeasured: a real skew still shows at spnego (KRB_AP_ERR_SKEW).
    return skip(name, 'the gateway sent no Date header: skew not measured (spnego would name a skew)');
  // The Date header is whole seconds: compare with the middle of the exchange, allow the rounding.
  const local = (probe.sentAt + probe.receivedAt) / 2;
  let skew = serverTime - local;
  if (Math.abs(skew) < 1000 + (probe.receivedAt - probe.sentAt) / 2) skew = 0;
  const seconds = Math.round(Math.abs(skew) / 1000);
  const direction = skew > 0 ? 'ahead of' : 'behind';
  const text =
    seconds === 0
      ? "the gateway's clock agrees with this one (within 1 s)"
      : `the gateway's clock is ${seconds} s ${direction} this one`;
  if (seconds > 300)
    return fail(
      name,
      ExitCode.auth,
      `${text}: more than Kerberos allows (300 s clockskew)`,
      'synchronise the clocks here and on the gateway (NTP / chrony)',
    );
  if (seconds > 60)
    return warn(
      name,
      `${text} (Kerberos allows 300 s)`,
      'synchronise the clocks here and on the gateway (NTP / chrony)',
    );
  return ok(name, text);
}

/**
 * The gateway login: GET /secret with a fresh SPNEGO token. Hadoop's filter verifies the token
 * (and sends its mutual-authentication token) before Jersey answers 405 for the method: nothing
 * is created or revoked.
 */
export async function classifyLogin(probe: Probe, negotiation: Negotiation, target: string): Promise<CheckResult> {
  const name = 'spnego';
  const reason = sanitizeText(probe.reason, 300);
  const explain = (text: string | undefined, krbError?: KrbError) =>
    explainAcceptorFailure({ text, krbError, who: 'the gateway', principal: target, now: new Date(probe.receivedAt) });
  if (probe.status === 401) {
    // MIT acceptors say why in a KRB-ERROR inside the 401's Negotiate token.
    const krbError = krbErrorFromChallenge(extractNegotiateToken(probe.headers['www-authenticate']));
    const cause = explain(undefined, krbError);
    if (cause) return fail(name, ExitCode.auth, `the gateway did not accept the token: ${cause.message}`, cause.hint);
    return fail(
      name,
      ExitCode.auth,
      `the gateway answered 401 to a token for ${target}: it did not accept it${krbError ? ` (${krbError.name})` : ''}`,
      `the gateway may hold another principal: check --spn against its ozone.s3g.http.auth.kerberos.principal`,
    );
  }
  const tooLarge = headerLimitCause({
    status: probe.status,
    reason: probe.reason,
    headers: probe.headers,
    bytes: Buffer.alloc(0),
    body: probe.body,
    sentTokenBytes: negotiation.tokenBytes,
  });
  if (tooLarge) return fail(name, tooLarge.exitCode, tooLarge.message, tooLarge.hint);
  if (probe.status === 403 && reason && !/^forbidden$/i.test(reason)) {
    const cause = explain(reason);
    return fail(
      name,
      ExitCode.auth,
      `the gateway could not verify the token for ${target}: ${cause?.message ?? reason}`,
      cause?.hint ??
        `the gateway's keytab must hold ${target} with the key version the KDC has (ozone.s3g.secret.http.auth.kerberos.keytab / principal); else use --spn for the name it holds`,
    );
  }
  if (probe.status >= 500) {
    const cause = explain(`${probe.reason}\n${probe.body}`);
    if (cause?.code === 'KRB_NAME_UNMAPPED') return fail(name, ExitCode.auth, cause.message, cause.hint);
  }
  let verified: boolean;
  try {
    verified = await negotiation.verify(probe.headers['www-authenticate']);
  } catch (error) {
    if (error instanceof Ozs3Error) return fail(name, error.exitCode, error.message, error.hint);
    throw error;
  }
  const who = negotiation.principal ? ` as ${negotiation.principal}` : '';
  const answered = `${probe.status}${reason ? ` ${reason}` : ''}`;
  // Only a 2xx or a verified mutual-authentication token shows the gateway took the token.
  if (!verified && !(probe.status >= 200 && probe.status < 300)) {
    return warn(
      name,
      `the gateway answered ${answered} to the token for ${target}, with no mutual-authentication token: nothing shows it accepted the token`,
      'an Ozone gateway answers a valid token with its own (WWW-Authenticate: Negotiate …) and 405 to GET; check --endpoint, or a proxy in between',
    );
  }
  if (probe.status === 400 && DISABLED.test(probe.body))
    return fail(
      name,
      ExitCode.response,
      'the gateway accepted the token, then said: S3 Secret endpoint is disabled.',
      DISABLED_FIX,
    );
  const mutual = verified ? 'mutual authentication verified' : 'no mutual-authentication token';
  if (probe.status === 405 || (probe.status >= 200 && probe.status < 300)) {
    return ok(
      name,
      `the gateway accepted your Kerberos token for ${target}${who} (${mutual}; GET answered ${probe.status}, nothing changed)`,
    );
  }
  if (probe.status === 403) {
    return warn(name, `the gateway accepted your token${who}, then answered 403`, ADMIN_ONLY_HINT);
  }
  return warn(
    name,
    `the gateway accepted your token${who} (${mutual}), then answered ${answered}`,
    'check --endpoint: an Ozone secret endpoint answers 405 to GET',
  );
}
