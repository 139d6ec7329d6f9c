/**
 * The S3 Gateway's secret endpoint as a SecretService (docs/endpoint.md): paths, statuses and
 * reason phrases in, typed results or Ozs3Errors out. One undici dispatcher per run, so a batch
 * reuses connections; every request carries a fresh SPNEGO token unless the server's hadoop.auth
 * cookie from this run stands in for it.
 */
import type { Dispatcher } from 'undici';
import {
  AuthError,
  NetworkError,
  Ozs3Error,
  ResponseError,
  SecretExistsError,
  UsageError,
  sanitizeText,
} from '../errors.js';
import { extractNegotiateToken, hasNegotiateParameter, type Negotiation, type Negotiator } from '../auth/spnego.js';
import { mapNetworkError } from '../http/causes.js';
import { explainAcceptorFailure } from '../auth/causes.js';
import { krbErrorFromChallenge } from '../auth/krb-error.js';
import type { SecretService } from '../service/secret-service.js';
import { RETRYABLE_STATUS, ServerError, interpretResponse, type Exchange } from './answers.js';
import { MAX_BODY_BYTES, oversizedBody, parseSecretXml, type S3Secret } from './secret-xml.js';

export interface RestServiceOptions {
  /** Base URL of the endpoint, already normalised to end in /secret. */
  endpoint: URL;
  /** The service principal, as causes name it (HTTP/host, with @REALM when pinned). */
  servicePrincipal: string;
  /** Starts a fresh security context per request (SPNEGO; a fake in unit tests). */
  negotiator: Negotiator;
  /**
   * A handshake already under way for the first request: GSSAPI works on libuv's thread pool, so it
   * can run while the main thread is still loading the HTTP stack.
   */
  firstNegotiation?: Promise<Negotiation> | undefined;
  /** Refuse a 2xx answer to a Negotiate request that brings no mutual-authentication token. */
  mutualAuth: boolean;
  /**
   * Reuse the gateway's hadoop.auth cookie instead of a fresh token (saves handshakes in a batch).
   * Only where TLS or loopback authenticates the server: a cookie request gets no mutual token back,
   * and over plain http the cookie itself travels in clear.
   */
  reuseCookie?: boolean | undefined;
  /** Deadline for one logical request: every attempt, renegotiation and backoff pause within it. */
  timeoutMs: number;
  retries: number;
  dispatcher: Dispatcher;
  trace?: ((line: string) => void) | undefined;
  userAgent?: string;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Monotonic milliseconds (unit tests). */
  now?: () => number;
}

export class RestSecretService implements SecretService {
  readonly transport = 'rest' as const;
  private cookie: string | undefined;
  /** The caller's principal, as the completed (mutually authenticated) handshake names it. */
  authenticatedPrincipal: string | undefined;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly now: () => number;

  private prefetched: Promise<Negotiation> | undefined;

  constructor(private readonly opts: RestServiceOptions) {
    this.prefetched = opts.firstNegotiation;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = opts.random ?? Math.random;
    // process.hrtime, not performance.now(): the performance global loads perf_hooks on first use.
    this.now = opts.now ?? (() => Number(process.hrtime.bigint()) / 1e6);
  }

  /** PUT /secret or /secret/{user}. */
  async getSecret(user: string | undefined): Promise<S3Secret> {
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
  async revokeSecret(user: string | undefined): Promise<void> {
    await this.withRetries('DELETE', user);
  }

  /** Ozone's REST endpoint has no request for it: only the OM RPC can set a secret. */
  setSecret(): Promise<S3Secret> {
    return Promise.reject(
      new UsageError('setsecret needs the OzoneManager RPC: the S3 Gateway has no request to set a secret', {
        hint: 'name the OM with --om HOST[:PORT] or --om-service-id ID (or OZONE_CONF_DIR with an ozone-site.xml)',
      }),
    );
  }

  async close(): Promise<void> {
    await this.opts.dispatcher.close().catch(() => {});
  }

  private pathFor(user: string | undefined): string {
    const base = this.opts.endpoint.pathname;
    // The user goes in the path, as one segment; Ozone ignores ?username= (docs/endpoint.md: never send it).
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
        return interpretResponse(
          method,
          user,
          res,
          this.opts.endpoint,
          path,
          this.opts.servicePrincipal,
          this.authenticatedPrincipal,
        );
      } catch (error) {
        const retryable = isRetryable(error);
        if (!retryable || attempt >= this.opts.retries) throw error;
        // Written and maybe done: a connection lost mid-answer, or a proxy's 502/504 after forwarding.
        if (
          (error instanceof NetworkError && error.code !== 'ECONNREFUSED' && error.code !== 'DNS') ||
          (error instanceof ServerError && (error.status === 502 || error.status === 504))
        ) {
          onLostAttempt?.();
        }
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

  /** A fresh security context (so a fresh, single-use token); the prefetched one serves once. */
  private nextNegotiation(): Promise<Negotiation> {
    const prefetched = this.prefetched;
    this.prefetched = undefined;
    return prefetched ?? this.opts.negotiator();
  }

  /** One request, with one renegotiation on 401 (a stale cookie, or another gateway behind a balancer). */
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
        throw this.rejected(res);
      }
      if (res.status === 403) {
        this.cookie = undefined;
        // A Hadoop gateway authenticates, then its admin filter refuses: the 403 carries the mutual
        // token, which names who the gateway took the caller for (a refusal's hint may need it). A
        // 403 without one, or with one that does not verify, only leaves the name unknown.
        const verified = await negotiation?.verify(res.headers['www-authenticate']).catch(() => false);
        if (verified) this.authenticatedPrincipal ??= negotiation!.principal;
      }
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
        const verified = await negotiation.verify(header);
        if (verified) this.authenticatedPrincipal ??= negotiation.principal;
        else if (res.status < 300 && this.opts.mutualAuth) throw noMutualToken(method);
      }
      if (res.status < 300 && this.opts.reuseCookie !== false) this.rememberCookie(res.headers['set-cookie']);
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
        method: method,
        headers,
        signal,
        headersTimeout: remaining,
        bodyTimeout: remaining,
      });
      const reason = res.statusText ?? '';
      this.traceResponse(res.statusCode, reason, res.headers);
      const bytes = await readBounded(res.body, res.headers['content-length']);
      this.trace(`< ${bytes.length} bytes of body`);
      return {
        status: res.statusCode,
        reason,
        headers: res.headers,
        bytes,
        body: bytes.toString('utf8'),
        sentTokenBytes: negotiation?.tokenBytes,
      };
    } catch (error) {
      if (error instanceof Ozs3Error || isBug(error)) throw error;
      throw mapNetworkError(error, endpoint, signal.aborted, timeoutMs);
    }
  }

  /** A 401 to a fresh token: the KRB-ERROR MIT acceptors send back names the cause. */
  private rejected(res: Exchange): AuthError {
    const krbError = krbErrorFromChallenge(extractNegotiateToken(res.headers['www-authenticate']));
    const cause = explainAcceptorFailure({
      krbError,
      who: 'the gateway',
      principal: this.opts.servicePrincipal,
      now: new Date(),
    });
    if (cause) return new AuthError(cause.code, cause.message, { hint: cause.hint });
    const said = krbError ? ` (${krbError.name})` : '';
    return new AuthError('KRB_REJECTED', `the gateway rejected the Kerberos token (401 after renegotiation)${said}`, {
      hint: 'check the service principal with --spn and that your ticket is for the right realm (klist)',
    });
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

/**
 * A gateway built on Hadoop's filter or mod_auth_gssapi always answers a Negotiate request with its
 * mutual-authentication token; without one, nothing proves the answer came from the gateway.
 */
function noMutualToken(method: string): AuthError {
  const created =
    method === 'PUT'
      ? '; if the gateway is genuine, a secret was created: get it with --no-mutual-auth --if-exists rotate'
      : '';
  return new AuthError(
    'KRB_NO_MUTUAL_AUTH',
    `the gateway answered without a mutual-authentication token (no WWW-Authenticate: Negotiate <token>), so the answer cannot be trusted and was discarded${created}`,
    {
      hint: 'check --endpoint (a proxy or another server may be answering); --no-mutual-auth accepts such a gateway, unsafely',
    },
  );
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
