/**
 * The Ozone S3 Gateway secret endpoint (spec/ozone-endpoint.md): paths, statuses and reason
 * phrases in, typed results or Ozs3Errors out. One undici dispatcher per run, so a batch reuses
 * connections; every request carries a fresh SPNEGO token unless the server's hadoop.auth cookie
 * from this run stands in for it.
 */
import type { Dispatcher } from 'undici';
import {
  AuthError,
  ForbiddenError,
  NetworkError,
  Ozs3Error,
  ResponseError,
  SecretExistsError,
  SecretNotFoundError,
  UsageError,
  sanitizeText,
} from '../errors.js';
import { extractNegotiateToken, startNegotiation, type Negotiation } from '../auth/spnego.js';
import { MAX_BODY_BYTES, oversizedBody, parseSecretXml, type S3Secret } from './response.js';

export interface SecretClientOptions {
  /** Base URL of the endpoint, already normalised to end in /secret. */
  endpoint: URL;
  /** GSS host-based service name, e.g. HTTP@s3g.example.com. */
  service: string;
  principal?: string | undefined;
  keytab?: string | undefined;
  /** Deadline for one logical request: every attempt, renegotiation and backoff pause within it. */
  timeoutMs: number;
  retries: number;
  dispatcher: Dispatcher;
  trace?: ((line: string) => void) | undefined;
  userAgent?: string;
  /** Replaces the SPNEGO handshake (unit tests). */
  negotiate?: typeof startNegotiation;
  /**
   * A handshake already under way for the first request: GSSAPI works on libuv's thread pool, so it
   * can run while the main thread is still loading the HTTP stack.
   */
  firstNegotiation?: Promise<Negotiation> | undefined;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Monotonic milliseconds (unit tests). */
  now?: () => number;
}

interface Exchange {
  status: number;
  reason: string;
  headers: Record<string, string | string[] | undefined>;
  /** The body as received (at most MAX_BODY_BYTES). */
  bytes: Buffer;
  /** The same, decoded leniently: for matching error texts only. */
  body: string;
}

/** Normalise `--endpoint`: http(s) only; `/secret` appended unless the path already ends in it. */
export function normalizeEndpoint(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`invalid endpoint URL '${sanitizeText(raw)}'`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UsageError(`invalid endpoint URL '${sanitizeText(raw)}': only http and https are supported`);
  }
  if (url.username || url.password) throw new UsageError('the endpoint URL must not carry a user name or password');
  url.search = '';
  url.hash = '';
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = path.endsWith('/secret') ? path : `${path}/secret`;
  return url;
}

export const RETRYABLE_STATUS = new Set([502, 503, 504]);

export class SecretClient {
  private cookie: string | undefined;
  /** The caller's principal, as the completed (mutually authenticated) handshake names it. */
  authenticatedPrincipal: string | undefined;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly now: () => number;

  private prefetched: Promise<Negotiation> | undefined;

  constructor(private readonly opts: SecretClientOptions) {
    this.prefetched = opts.firstNegotiation;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = opts.random ?? Math.random;
    // process.hrtime, not performance.now(): the performance global loads perf_hooks on first use.
    this.now = opts.now ?? (() => Number(process.hrtime.bigint()) / 1e6);
  }

  /** PUT /secret or /secret/{user}. */
  async getSecret(user?: string): Promise<S3Secret> {
    const who = user ?? 'you';
    let mayHaveBeenSent = false;
    try {
      const res = await this.withRetries('PUT', user, () => {
        mayHaveBeenSent = true;
      });
      return parseSecretXml(res.bytes);
    } catch (error) {
      if (error instanceof SecretExistsError && mayHaveBeenSent) {
        throw new SecretExistsError(
          `S3_SECRET_ALREADY_EXISTS for ${who} after a lost response: the secret was probably created by the earlier attempt, and Ozone shows a secret only once`,
          { hint: 'get a new one with --if-exists rotate (the lost secret stops working)' },
        );
      }
      throw error;
    }
  }

  /** DELETE /secret or /secret/{user}. */
  async revokeSecret(user?: string): Promise<void> {
    await this.withRetries('DELETE', user);
  }

  async close(): Promise<void> {
    await this.opts.dispatcher.close().catch(() => {});
  }

  private pathFor(user: string | undefined): string {
    const base = this.opts.endpoint.pathname;
    // The user goes in the path, as one segment; Ozone ignores ?username= (spec: never send it).
    return user === undefined ? base : `${base}/${encodeURIComponent(user)}`;
  }

  private async withRetries(
    method: 'PUT' | 'DELETE',
    user: string | undefined,
    onLostAttempt?: () => void,
  ): Promise<Exchange> {
    const path = this.pathFor(user);
    // One deadline for the whole request, so `--timeout 2` means two seconds, not two per attempt.
    const deadline = this.now() + this.opts.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.exchange(method, path, deadline);
        return interpretResponse(method, user, res, this.opts.endpoint);
      } catch (error) {
        const retryable = isRetryable(error);
        if (!retryable || attempt >= this.opts.retries) throw error;
        if (error instanceof NetworkError && error.code !== 'ECONNREFUSED' && error.code !== 'DNS') onLostAttempt?.();
        // Full jitter on an exponential base: 250 ms, 500 ms, 1 s … capped at 4 s.
        const delay = Math.round(this.random() * Math.min(4000, 250 * 2 ** attempt));
        // No time left for another try: report what actually went wrong, not a timeout.
        if (this.now() + delay >= deadline) throw error;
        this.trace(
          `retry ${attempt + 1}/${this.opts.retries} after ${(error as Ozs3Error).code} in ${delay} ms (fresh token)`,
        );
        await this.sleep(delay);
      }
    }
  }

  /** One request, with one renegotiation on 401 (a stale cookie, or another gateway behind a balancer). */
  /** A fresh security context (so a fresh, single-use token); the prefetched one serves once. */
  private nextNegotiation(): Promise<Negotiation> {
    const prefetched = this.prefetched;
    this.prefetched = undefined;
    return (
      prefetched ??
      (this.opts.negotiate ?? startNegotiation)({
        service: this.opts.service,
        principal: this.opts.principal,
        keytab: this.opts.keytab,
        trace: this.opts.trace,
      })
    );
  }

  private async exchange(method: string, path: string, deadline: number): Promise<Exchange> {
    let renegotiated = false;
    for (;;) {
      const cookie = this.cookie;
      const negotiation: Negotiation | undefined = cookie ? undefined : await this.nextNegotiation();
      const res = await this.send(method, path, negotiation, cookie, deadline);
      if (res.status === 401) {
        this.cookie = undefined;
        if (cookie || !renegotiated) {
          renegotiated ||= !cookie;
          this.trace('401: negotiating again with a fresh token');
          continue;
        }
        throw new AuthError('KRB_REJECTED', 'the gateway rejected the Kerberos token (401 after renegotiation)', {
          hint: 'check the service principal with --spn and that your ticket is for the right realm (klist)',
        });
      }
      if (res.status === 403) this.cookie = undefined;
      if (negotiation && res.status !== 403) {
        const header = res.headers['www-authenticate'];
        // verify() treats an unparseable token as none at all; a server that sent one cannot be trusted either.
        if (extractNegotiateToken(header) === undefined && hasNegotiateParameter(header)) {
          throw new AuthError(
            'KRB_MUTUAL_AUTH_FAILED',
            "mutual authentication failed: the server's Negotiate token is not base64; its response was discarded",
            {
              hint: 'the endpoint may not be the gateway it claims to be; check --endpoint and --spn',
            },
          );
        }
        if (await negotiation.verify(header)) this.authenticatedPrincipal ??= negotiation.principal;
      }
      if (res.status < 300) this.rememberCookie(res.headers['set-cookie']);
      return res;
    }
  }

  private async send(
    method: string,
    path: string,
    negotiation: Negotiation | undefined,
    cookie: string | undefined,
    deadline: number,
  ): Promise<Exchange> {
    const { endpoint, timeoutMs, dispatcher } = this.opts;
    const headers: Record<string, string> = {
      'user-agent': this.opts.userAgent ?? 'ozs3',
      accept: 'application/xml',
    };
    if (negotiation) headers.authorization = negotiation.authorization;
    if (cookie) headers.cookie = `hadoop.auth=${cookie}`;
    this.trace(`> ${method} ${endpoint.origin}${path}`);
    this.trace(
      `> authorization: ${negotiation ? 'Negotiate <redacted>' : '(none)'}${cookie ? '; cookie: hadoop.auth=<redacted>' : ''}`,
    );
    const remaining = Math.max(1, Math.round(deadline - this.now()));
    // The signal stays armed while the body is read, so a body that trickles in is cut off too.
    const signal = AbortSignal.timeout(remaining);
    try {
      const res = await dispatcher.request({
        origin: endpoint.origin,
        path,
        method: method as Dispatcher.HttpMethod,
        headers,
        signal,
        headersTimeout: remaining,
        bodyTimeout: remaining,
      });
      const reason = res.statusText ?? '';
      this.traceResponse(res.statusCode, reason, res.headers);
      const bytes = await readBounded(res.body, res.headers['content-length']);
      this.trace(`< ${bytes.length} bytes of body`);
      return { status: res.statusCode, reason, headers: res.headers, bytes, body: bytes.toString('utf8') };
    } catch (error) {
      if (error instanceof Ozs3Error || isBug(error)) throw error;
      throw mapNetworkError(error, endpoint, signal.aborted, timeoutMs);
    }
  }

  private rememberCookie(setCookie: string | string[] | undefined): void {
    const values = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie];
    for (const value of values) {
      const m = /^\s*hadoop\.auth=("[^"]*"|[^;]*)/.exec(value);
      if (m && m[1] && m[1] !== '""') {
        this.cookie = m[1];
        this.trace('< set-cookie: hadoop.auth=<redacted> (reused for the rest of this run)');
      }
    }
  }

  /** Status and the headers that help a diagnosis; credentials and cookies never. */
  private traceResponse(status: number, reason: string, headers: Exchange['headers']): void {
    if (!this.opts.trace) return;
    this.trace(`< ${status} ${sanitizeText(reason)}`);
    for (const name of ['content-type', 'content-length', 'transfer-encoding', 'location', 'server', 'via']) {
      const value = headers[name];
      if (value !== undefined) this.trace(`< ${name}: ${sanitizeText(String(value))}`);
    }
    if (headers['www-authenticate'] !== undefined) this.trace('< www-authenticate: Negotiate <redacted>');
  }

  private trace(line: string): void {
    this.opts.trace?.(line);
  }
}

/** A TypeError and the like without an error code is ozs3's (or undici's) bug, not the network's: exit 1, not 7. */
function isBug(error: unknown): boolean {
  return (
    (error instanceof TypeError || error instanceof RangeError || error instanceof ReferenceError) &&
    (error as { code?: unknown }).code === undefined
  );
}

/** A `Negotiate` challenge carrying something after the scheme name. */
function hasNegotiateParameter(header: string | string[] | undefined): boolean {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  return values.some((value) => /(^|,)\s*Negotiate\s+\S/i.test(value));
}

/** The body, or BODY_TOO_LARGE as soon as it passes the cap (declared or counted): memory stays bounded. */
async function readBounded(
  body: Dispatcher.ResponseData['body'],
  contentLength: string | string[] | undefined,
): Promise<Buffer> {
  const declared = Number(Array.isArray(contentLength) ? contentLength[0] : contentLength);
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) {
    body.destroy();
    throw oversizedBody();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      body.destroy();
      throw oversizedBody();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function isRetryable(error: unknown): boolean {
  if (error instanceof NetworkError) return !error.code.startsWith('TLS') && error.code !== 'DNS';
  return (
    error instanceof ResponseError &&
    error.code === 'SERVER_ERROR' &&
    RETRYABLE_STATUS.has(Number((error as ResponseError & { status?: number }).status))
  );
}

class ServerError extends ResponseError {
  constructor(
    readonly status: number,
    message: string,
    hint?: string,
  ) {
    super('SERVER_ERROR', message, { hint });
  }
}

/** Ozone puts its error codes in the HTTP reason phrase (HTTP/2 has none: fall back to the body). */
export function interpretResponse(method: string, user: string | undefined, res: Exchange, endpoint: URL): Exchange {
  const { status } = res;
  const reason = sanitizeText(res.reason);
  const text = `${res.reason}\n${res.body.slice(0, 4096)}`;
  const who = user === undefined ? 'your user' : `'${sanitizeText(user)}'`;
  if (status >= 200 && status < 300) return res;
  if (/S3_SECRET_ALREADY_EXISTS/.test(text)) {
    throw new SecretExistsError(
      `S3_SECRET_ALREADY_EXISTS: ${who} already has an S3 secret, and Ozone shows a secret only once`,
      {
        hint: `revoke it first (ozs3 revokesecret${user ? ` -u ${user}` : ''}) or use --if-exists rotate`,
      },
    );
  }
  if (/S3_SECRET_NOT_FOUND/.test(text)) {
    throw new SecretNotFoundError(
      `S3_SECRET_NOT_FOUND: ${who} has no S3 secret to ${method === 'DELETE' ? 'revoke' : 'read'}`,
    );
  }
  if (status >= 300 && status < 400) {
    const location = res.headers.location;
    const target = sanitizeText(String(Array.isArray(location) ? location[0] : (location ?? '(no Location)')));
    throw new ResponseError(
      'REDIRECT',
      `the endpoint redirected (${status}) to ${target}; ozs3 does not send Kerberos credentials to another URL`,
      {
        hint: 'use the final URL as --endpoint if you trust it',
      },
    );
  }
  if (status === 400 && /S3 Secret endpoint is disabled/i.test(text)) {
    throw new ResponseError('ENDPOINT_DISABLED', 'the S3 secret endpoint is disabled on this gateway', {
      hint: 'an Ozone admin must set ozone.s3g.secret.http.enabled=true on the S3 Gateway',
    });
  }
  if (status === 403) {
    // Hadoop's AuthenticationFilter puts the Kerberos exception text in the reason phrase;
    // Ozone's admin filter answers a plain 403 Forbidden.
    if (
      reason !== '' &&
      !/^forbidden$/i.test(reason) &&
      /GSS|Kerberos|authenticat|token|checksum|mechanism|principal|replay|ticket/i.test(reason)
    ) {
      throw new AuthError('KRB_REJECTED', `the gateway could not verify your Kerberos token: ${reason}`, {
        hint: "the gateway's keytab may not hold the principal you asked a ticket for; check --spn (default HTTP@<endpoint host>)",
      });
    }
    throw new ForbiddenError(
      user === undefined
        ? 'forbidden (403): the gateway refused your request for your own secret'
        : `forbidden (403): you are not an S3 administrator, so you cannot manage the secret of ${who}`,
      {
        hint:
          user === undefined
            ? 'on Ozone 2.x with authorization enabled the whole endpoint is admin-only: ask for ozone.s3.administrators'
            : 'only users in ozone.s3.administrators may name another user',
      },
    );
  }
  if (status === 405 && user !== undefined) {
    throw new ResponseError('METHOD_NOT_ALLOWED', 'the gateway does not allow the /secret/{username} form (405)', {
      hint: 'some Ozone 1.4.1-era builds disabled it; run without --user as that user, or upgrade Ozone',
    });
  }
  if (status === 404) {
    throw new ResponseError('NOT_OZONE_ENDPOINT', `nothing at ${endpoint.origin}${endpoint.pathname} (404)`, {
      hint: 'Ozone 2.x serves /secret on the web admin port (19878/19879); 1.4.x on the S3 Gateway port (9878/9879)',
    });
  }
  const summary = `${status}${reason ? ` ${reason}` : ''}`;
  // Without Ozone authorization the gateway lets /{username} through, and the OM refuses a
  // non-admin with USER_MISMATCH, which the endpoint turns into a 500.
  if (status === 500 && /USER_MISMATCH/.test(text)) {
    throw new ForbiddenError(
      `forbidden: the Ozone Manager refused to act on the secret of ${who} for you (USER_MISMATCH)`,
      {
        hint: 'only users in ozone.s3.administrators may name another user',
      },
    );
  }
  if (status >= 500) {
    const hint = RETRYABLE_STATUS.has(status)
      ? 'the gateway or its load balancer is unavailable; try again later'
      : user !== undefined
        ? 'for another user’s secret a 500 often means you are not an S3 admin (ozone.s3.administrators) on a gateway without Ozone authorization'
        : undefined;
    throw new ServerError(status, `the gateway failed: ${summary}`, hint);
  }
  throw new ResponseError('UNEXPECTED_STATUS', `unexpected response from the gateway: ${summary}`);
}

const TLS_CODES: Record<string, [string, string]> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: ['the server certificate is self-signed', 'trust it with --cacert FILE (PEM)'],
  SELF_SIGNED_CERT_IN_CHAIN: [
    'the server certificate chains to an untrusted self-signed CA',
    'trust the CA with --cacert FILE or NODE_EXTRA_CA_CERTS',
  ],
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: [
    'the server certificate was issued by an unknown CA',
    'trust the CA with --cacert FILE or NODE_EXTRA_CA_CERTS',
  ],
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: [
    'the server certificate was issued by an unknown CA',
    'trust the CA with --cacert FILE or NODE_EXTRA_CA_CERTS',
  ],
  UNABLE_TO_GET_ISSUER_CERT: [
    'the server certificate was issued by an unknown CA',
    'trust the CA with --cacert FILE or NODE_EXTRA_CA_CERTS',
  ],
  CERT_HAS_EXPIRED: [
    'the server certificate has expired',
    "the gateway needs a renewed certificate (or this machine's clock is wrong)",
  ],
  CERT_NOT_YET_VALID: ['the server certificate is not valid yet', 'check the clock here and on the gateway'],
  ERR_TLS_CERT_ALTNAME_INVALID: [
    "the server certificate does not match the endpoint's host name",
    'use the host name the certificate was issued for',
  ],
};

const PROXY_HINT = 'check HTTPS_PROXY / HTTP_PROXY, or exempt the gateway with NO_PROXY';

export function mapNetworkError(error: unknown, endpoint: URL, timedOut: boolean, timeoutMs: number): Ozs3Error {
  const err = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err?.cause?.code ?? err?.code ?? '';
  const where = endpoint.host;
  if (timedOut || /TIMEOUT/.test(code) || (error as Error)?.name === 'TimeoutError') {
    return new NetworkError('TIMEOUT', `no complete answer from ${where} within ${timeoutMs / 1000} s`, {
      hint: 'raise --timeout, or check the network path to the gateway',
      cause: error,
    });
  }
  const tls = TLS_CODES[code];
  if (tls) {
    // Node's host-name check names what the certificate is for: say it, the fix is to use one of those.
    const names = (error as { cert?: { subjectaltname?: string } })?.cert?.subjectaltname;
    const detail = code === 'ERR_TLS_CERT_ALTNAME_INVALID' && names ? `; it is for ${sanitizeText(names)}` : '';
    return new NetworkError(`TLS_${code}`, `TLS to ${where} failed: ${tls[0]} (${code}${detail})`, {
      hint: tls[1],
      cause: error,
    });
  }
  if (code === 'ECONNREFUSED') {
    // Through HTTP(S)_PROXY the refused connection is the proxy's: name it, not the endpoint.
    const refused = (err.cause ?? err) as { address?: string; port?: number };
    const endpointPort = Number(endpoint.port || (endpoint.protocol === 'https:' ? 443 : 80));
    if (refused.port !== undefined && refused.port !== endpointPort) {
      return new NetworkError(
        'ECONNREFUSED',
        `connection to the proxy ${refused.address ?? ''}:${refused.port} refused`,
        { hint: PROXY_HINT, cause: error },
      );
    }
    return new NetworkError('ECONNREFUSED', `connection to ${where} refused`, {
      hint: 'is the S3 Gateway running, and is this its secret endpoint port?',
      cause: error,
    });
  }
  // undici's ProxyAgent: a CONNECT answered with another status than 200, or a 407 when forwarding.
  const proxyStatus = /^Proxy (?:response \((\d{3})\)|Authentication Required \((407)\))/.exec(err?.message ?? '');
  if (proxyStatus) {
    const status = proxyStatus[1] ?? proxyStatus[2];
    return new NetworkError('PROXY', `the proxy did not connect ozs3 to ${where} (proxy status ${status})`, {
      hint:
        status === '407'
          ? 'the proxy wants credentials: put them in the proxy URL, http://user:password@proxy:port'
          : PROXY_HINT,
      cause: error,
    });
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new NetworkError('DNS', `cannot resolve host ${endpoint.hostname} (${code})`, {
      hint: 'check the host name in --endpoint and DNS',
      cause: error,
    });
  }
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED') {
    const how = /closed/i.test(err?.message ?? '') ? 'closed' : 'reset';
    return new NetworkError('ECONNRESET', `the connection to ${where} was ${how} before the answer was complete`, {
      cause: error,
    });
  }
  // undici's llhttp errors carry no code, only their name, and llhttp's reason in parentheses.
  if ((error as Error)?.name === 'HTTPParserError' || code === 'UND_ERR_HEADERS_OVERFLOW' || /^HPE_/.test(code)) {
    const why = code || /\(([^()]+)\)$/.exec(err?.message ?? '')?.[1] || 'unparseable';
    return new ResponseError('MALFORMED_HTTP', `the answer from ${where} is not valid HTTP (${sanitizeText(why)})`, {
      hint:
        endpoint.protocol === 'http:'
          ? 'if the gateway serves https on this port, use https:// in --endpoint'
          : undefined,
      cause: error,
    });
  }
  if (/^(ERR_TLS|ERR_SSL|EPROTO)/.test(code) || /SSL|TLS/i.test(err?.cause?.message ?? err?.message ?? '')) {
    return new NetworkError('TLS_ERROR', `TLS to ${where} failed (${code || sanitizeText(err?.message ?? '')})`, {
      hint:
        endpoint.protocol === 'https:'
          ? 'is the endpoint really https? try http:// if the gateway serves plain HTTP'
          : undefined,
      cause: error,
    });
  }
  return new NetworkError(
    code || 'NETWORK',
    `request to ${where} failed: ${sanitizeText(err?.cause?.message ?? err?.message ?? String(error))}`,
    {
      cause: error,
    },
  );
}
