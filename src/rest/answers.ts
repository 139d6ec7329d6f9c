/**
 * What the Ozone secret endpoint's answers mean (docs/endpoint.md): status, reason phrase and body
 * turned into a result or an Ozs3Error with its cause and fix. The REST transport and the doctor's
 * gateway checks both use these.
 */
import { explainAcceptorFailure, withNameCase } from '../auth/causes.js';
import { shellQuote } from '../format/secret.js';
import {
  AuthError,
  ForbiddenError,
  ResponseError,
  SecretExistsError,
  SecretNotFoundError,
  sanitizeText,
} from '../errors.js';

export const PORT_HINT =
  'Ozone 2.x serves /secret on the web admin port (19878 http / 19879 https: ozone.s3g.webadmin.http(s)-address); Ozone 1.4 on the S3 Gateway port (9878 / 9879)';

/** Ozone 2.x: the REST endpoint is for S3 admins only; the OM lets every user manage their own secret. */
export const ADMIN_ONLY_HINT =
  'on Ozone 2.x the REST endpoint serves S3 admins only (ozone.s3.administrators); every user can get their own secret from the OzoneManager: --om <om-host>:9862 (or OZONE_CONF_DIR with ozone-site.xml)';

export const RETRYABLE_STATUS = new Set([502, 503, 504]);

/** One HTTP answer, its body bounded. */
export interface Exchange {
  status: number;
  reason: string;
  headers: Record<string, string | string[] | undefined>;
  /** The body as received (at most MAX_BODY_BYTES). */
  bytes: Buffer;
  /** The same, decoded leniently: for matching error texts only. */
  body: string;
  /** The size of the Kerberos token the request carried, if it carried one. */
  sentTokenBytes?: number | undefined;
}

export class ServerError extends ResponseError {
  constructor(
    readonly status: number,
    message: string,
    hint?: string,
  ) {
    super('SERVER_ERROR', message, { hint });
  }
}

/** Ozone puts its error codes in the HTTP reason phrase (HTTP/2 has none: fall back to the body). */
export function interpretResponse(
  method: string,
  user: string | undefined,
  res: Exchange,
  endpoint: URL,
  path = endpoint.pathname,
  servicePrincipal = `HTTP/${endpoint.hostname}`,
  /** The caller's principal, when mutual authentication proved the gateway took the token. */
  authenticatedAs?: string,
): Exchange {
  const { status } = res;
  const reason = sanitizeText(res.reason);
  const text = `${res.reason}\n${res.body.slice(0, 4096)}`;
  const who = user === undefined ? 'your user' : `'${sanitizeText(user)}'`;
  if (status >= 200 && status < 300) return res;
  if (/S3_SECRET_ALREADY_EXISTS/.test(text)) {
    throw new SecretExistsError(
      `S3_SECRET_ALREADY_EXISTS: ${who} already has an S3 secret, and Ozone shows a secret only once`,
      {
        hint: `revoke it first (ozs3 revokesecret${user ? ` -u ${shellQuote(user)}` : ''}) or use --if-exists rotate`,
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
  const tooLarge = headerLimitCause(res);
  if (tooLarge) throw tooLarge;
  if (status === 403) {
    // Hadoop's AuthenticationFilter puts the Kerberos exception text in the reason phrase;
    // Ozone's admin filter answers a plain 403 Forbidden.
    if (
      reason !== '' &&
      !/^forbidden$/i.test(reason) &&
      /GSS|Kerberos|authenticat|token|checksum|mechanism|principal|replay|ticket|encryption|clock|key/i.test(reason)
    ) {
      const cause = explainAcceptorFailure({ text: reason, who: 'the gateway', principal: servicePrincipal });
      if (cause) throw new AuthError(cause.code, cause.message, { hint: cause.hint });
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
            ? ADMIN_ONLY_HINT
            : withNameCase('only users in ozone.s3.administrators may name another user', authenticatedAs),
      },
    );
  }
  if (status === 405 && user !== undefined) {
    throw new ResponseError('METHOD_NOT_ALLOWED', 'the gateway does not allow the /secret/{username} form (405)', {
      hint: 'some Ozone 1.4.1-era builds disabled it; run without --user as that user, or upgrade Ozone',
    });
  }
  const url = `${endpoint.origin}${path}`;
  // Apache (AllowEncodedSlashes Off) answers 404, Jetty 12 400 "Ambiguous URI path separator".
  if ((status === 404 || (status === 400 && /ambiguous/i.test(text))) && user?.includes('/')) {
    throw new ResponseError(
      'ENCODED_SLASH_REFUSED',
      `the gateway answered ${status} for ${url}: it refuses the encoded '/' (%2F) of ${who}`,
      {
        hint: 'Jetty 12 and Apache reject %2F in paths; run as that principal without -u, or use the OM RPC (--om HOST), where the access id is not in a URL',
      },
    );
  }
  if (status === 404) throw new ResponseError('NOT_OZONE_ENDPOINT', `nothing at ${url} (404)`, { hint: PORT_HINT });
  const summary = `${status}${reason ? ` ${reason}` : ''}`;
  // Hadoop's filter fails with 500 when auth_to_local has no rule for the name (enterprise names).
  const unmapped =
    status === 500 ? explainAcceptorFailure({ text, who: 'the gateway', principal: servicePrincipal }) : undefined;
  if (unmapped?.code === 'KRB_NAME_UNMAPPED')
    throw new AuthError(unmapped.code, unmapped.message, { hint: unmapped.hint });
  // Without Ozone authorization the gateway lets /{username} through, and the OM refuses a
  // non-admin with USER_MISMATCH, which the endpoint turns into a 500.
  if (status === 500 && /USER_MISMATCH/.test(text)) {
    throw new ForbiddenError(
      `forbidden: the Ozone Manager refused to act on the secret of ${who} for you (USER_MISMATCH)`,
      {
        hint: withNameCase('only users in ozone.s3.administrators may name another user', authenticatedAs),
      },
    );
  }
  if (status >= 500) {
    // Hadoop's filter fails with a bare 500 after a good handshake when auth_to_local has no rule
    // for the name (KerberosName$NoMatchingRule, only in the gateway's log).
    const nameHint = authenticatedAs
      ? `the gateway authenticated you as ${authenticatedAs}, then failed: if that name is from another realm than the gateway's, or an enterprise name, Hadoop's auth_to_local has no rule for it (KerberosName$NoMatchingRule in its log): kinit -C, or ask its admins for a rule; else see the S3 Gateway log`
      : undefined;
    const hint = RETRYABLE_STATUS.has(status)
      ? 'the gateway or its load balancer is unavailable; try again later'
      : user !== undefined
        ? 'for another user’s secret a 500 often means you are not an S3 admin (ozone.s3.administrators) on a gateway without Ozone authorization'
        : nameHint;
    throw new ServerError(status, `the gateway failed: ${summary}`, hint);
  }
  throw new ResponseError('UNEXPECTED_STATUS', `unexpected response from the gateway: ${summary}`);
}

/** Common request-header limits a Negotiate header meets on its way (bytes). */
export const HEADER_LIMITS = [
  { who: "Apache httpd's LimitRequestFieldSize", bytes: 8190 },
  {
    who: "Jetty's default request header size (Ozone's gateway unless hadoop.http.max.request.header.size is set)",
    bytes: 8192,
  },
];

/** The Authorization header's size for a token of `tokenBytes` (base64 plus "Negotiate "). */
export function authorizationHeaderBytes(tokenBytes: number): number {
  return 'Authorization: Negotiate '.length + Math.ceil(tokenBytes / 3) * 4;
}

/**
 * 400 or 431 to a request that carried a large Kerberos token: the gateway's header limit, not
 * the request. A user in hundreds of AD groups carries a PAC that makes an 8–9 KB header.
 */
export function headerLimitCause(res: Exchange): AuthError | ResponseError | undefined {
  if (res.status !== 400 && res.status !== 431) return undefined;
  const text = `${res.reason}\n${res.body.slice(0, 4096)}`;
  const saysTooLarge = /too large|exceeds|header field|Request Header Fields/i.test(text) || res.status === 431;
  const header = res.sentTokenBytes === undefined ? undefined : authorizationHeaderBytes(res.sentTokenBytes);
  if (header === undefined || (!saysTooLarge && header < 4096)) return undefined;
  const answer = `${res.status}${res.reason ? ` ${sanitizeText(res.reason, 80)}` : ''}`;
  if (header < 4096) {
    // A small token: the gateway's limit is unusually low, or something else fills the headers.
    return new ResponseError(
      'HEADERS_TOO_LARGE',
      `the gateway refused the request's headers as too large (${answer}), though its Kerberos token is only ${res.sentTokenBytes} bytes (an Authorization header of ${header} bytes)`,
      {
        hint: 'its header limit is unusually low, or a proxy in between adds headers: ask the gateway admins (hadoop.http.max.request.header.size; Apache: LimitRequestFieldSize)',
      },
    );
  }
  return new AuthError(
    'KRB_TOKEN_TOO_LARGE',
    `the gateway refused the request (${answer}): its Kerberos token is ${res.sentTokenBytes} bytes, an Authorization header of ${header} bytes, over the gateway's header limit`,
    {
      hint: 'a ticket this large comes from membership in many AD groups (the PAC): ask the gateway admins to raise the limit (Ozone/Hadoop: hadoop.http.max.request.header.size; Apache: LimitRequestFieldSize), use a principal in fewer groups, or use the OM RPC (--om HOST), which has no header limit',
    },
  );
}
