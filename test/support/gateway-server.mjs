#!/usr/bin/env node
/**
 * An Ozone-compatible S3 secret endpoint (the S3 Gateway's `/secret`) with real SPNEGO, for tests,
 * the demo and the benchmark. It mirrors, as observed in Apache Ozone and Hadoop's code:
 *   - Hadoop AuthenticationFilter + KerberosAuthenticationHandler on /secret/* (401 challenge, 403 with
 *     the exception text as reason, mutual token on success, signed `hadoop.auth` cookie);
 *   - Jersey resource S3SecretManagementEndpoint (@Path("/") under servlet /secret/*), its filters
 *     S3SecretEnabledEndpointRequestFilter and S3SecretAdminFilter;
 *   - Jersey's sendError() for body-less 4xx/5xx, which makes Jetty 9.4 write its HTML error page.
 *
 * Run it forked (IPC, see gateway.ts) or standalone:
 *   KRB5_CONFIG=… KRB5_KTNAME=… node test/support/gateway-server.mjs '{"port":0,"admins":["admin"]}'
 * Options come from argv[2] (JSON) or env OZS3_GATEWAY_OPTIONS. Prints `listening <port>` when ready.
 * The kerberos library reads KRB5_* at first use, so this must run in its own process.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  admins: [],
  adminOnly: false,
  disabled: false,
  userForm405: false,
  mutual: true,
  setCookie: true,
  // Ozone's secretAuthentication filter passes no cookie.path, so Hadoop sends no Path attribute.
  cookiePath: null,
  cookieValiditySec: 36000,
  presetSecrets: {},
  existingSecrets: {},
  // 'reason': code in the reason phrase + Jetty 9.4 HTML page (Ozone 1.4–2.1).
  // 'body': Jetty 12 sends no custom reason; the code is a text/plain body.
  errorCodeIn: 'reason',
  acceptor: '',
  realm: null,
  latencyMs: 0,
};

const HTML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
// JAXB escapes &, < and > in text (and \r as &#xD;); quotes are left as they are.
const escapeXmlText = (s) =>
  String(s).replace(/[&<>\r]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#xD;' })[c]);

const STARTED = Symbol('started');

const STANDARD_REASONS = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  500: 'Server Error',
};

/** Jetty 9.4 caps a reason at 1024 chars and replaces CR/LF; Node also refuses other control chars. */
function sanitizeReason(reason) {
  return String(reason)
    .slice(0, 1024)
    .replace(/[^\t\x20-\x7e\x80-\xff]/g, '?');
}

function parseOptions(raw) {
  const options = { ...DEFAULTS };
  if (raw) Object.assign(options, typeof raw === 'string' ? JSON.parse(raw) : raw);
  return options;
}

/** Java-style rendering of a GSS failure, as Hadoop puts AuthenticationException(GSSException) text in the reason. */
function gssExceptionText(message) {
  const text = String(message ?? '');
  const idx = text.indexOf(': ');
  let major = idx >= 0 ? text.slice(0, idx) : text;
  const minor = idx >= 0 ? text.slice(idx + 2) : '';
  if (/Unspecified GSS failure/i.test(major)) major = 'Failure unspecified at GSS-API level';
  else if (/invalid token|defective token/i.test(major)) major = 'Defective token detected';
  else if (/No challenge parameter/i.test(major))
    return 'GSSException: Defective token detected (Mechanism level: GSSHeader did not find the right tag)';
  return minor ? `GSSException: ${major} (Mechanism level: ${minor})` : `GSSException: ${major}`;
}

export function createGateway(initialOptions = {}) {
  let options = parseOptions(initialOptions);
  const kerberos = require('kerberos');
  const signingSecret = randomBytes(32);
  const seenTokens = new Set();
  let requests = [];
  let secrets = { ...options.existingSecrets };

  const sign = (value) => createHmac('sha256', signingSecret).update(value, 'utf8').digest('base64');

  function shortName(principal) {
    const at = principal.lastIndexOf('@');
    const realm = at >= 0 ? principal.slice(at + 1) : null;
    const name = at >= 0 ? principal.slice(0, at) : principal;
    // Hadoop's DEFAULT auth_to_local rule: first component, for principals of the default realm.
    if (options.realm && realm && realm !== options.realm) return principal;
    return name.split('/')[0];
  }

  function isAdmin(principal) {
    const admins = options.admins ?? [];
    return admins.includes('*') || admins.includes(principal) || admins.includes(shortName(principal));
  }

  /** AuthenticationFilter.getToken: the cookie, verified. Throws a Java-like message on a bad one. */
  function tokenFromCookie(req) {
    const header = req.headers.cookie;
    if (!header) return null;
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0 || part.slice(0, eq).trim() !== 'hadoop.auth') continue;
      let value = part.slice(eq + 1).trim();
      if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
      if (value === '') throw new Error('Unauthorized access');
      const sigAt = value.lastIndexOf('&s=');
      if (sigAt < 0) {
        throw new Error(
          `org.apache.hadoop.security.authentication.util.SignerException: Invalid signed text: ${value}`,
        );
      }
      const raw = value.slice(0, sigAt);
      const given = Buffer.from(value.slice(sigAt + 3), 'utf8');
      const expected = Buffer.from(sign(raw), 'utf8');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new Error('org.apache.hadoop.security.authentication.util.SignerException: Invalid signature');
      }
      const fields = Object.fromEntries(
        raw.split('&').map((kv) => {
          const i = kv.indexOf('=');
          return [kv.slice(0, i), kv.slice(i + 1)];
        }),
      );
      if (!fields.u || !fields.p || !fields.t || !fields.e) throw new Error('Invalid token string, missing attributes');
      if (fields.t !== 'kerberos') throw new Error('Invalid AuthenticationToken type');
      if (Number(fields.e) !== -1 && Number(fields.e) < Date.now()) throw new Error('AuthenticationToken expired');
      return { principal: fields.p, via: 'cookie' };
    }
    return null;
  }

  function authCookie(value) {
    let cookie = `hadoop.auth=${value ? `"${value}"` : ''}`;
    if (options.cookiePath) cookie += `; Path=${options.cookiePath}`;
    return `${cookie}; HttpOnly`;
  }

  function redactHeaders(headers) {
    const out = {};
    for (const [key, value] of Object.entries(headers)) {
      if (key === 'authorization' && typeof value === 'string') {
        const [scheme, ...rest] = value.split(' ');
        const token = rest.join(' ').trim();
        out[key] = token ? `${scheme} <redacted len=${token.length}>` : scheme;
      } else {
        out[key] = value;
      }
    }
    return out;
  }

  async function handle(req, res, record) {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
    const headers = {
      // HttpServer2's default headers on every response.
      'X-FRAME-OPTIONS': 'SAMEORIGIN',
      'X-XSS-Protection': '1; mode=block',
      'X-Content-Type-Options': 'nosniff',
    };
    const setCookies = [];

    const send = (status, { reason, body = '', contentType, extra = {} } = {}) => {
      record.status = status;
      record.reason = reason ?? STANDARD_REASONS[status] ?? '';
      const h = { ...headers, ...extra };
      if (setCookies.length) h['Set-Cookie'] = setCookies;
      if (body !== '' && contentType) h['Content-Type'] = contentType;
      h['Content-Length'] = Buffer.byteLength(body, contentType?.includes('iso-8859-1') ? 'latin1' : 'utf8');
      // Measured before the response leaves, so a client that asks for requests() right after sees it.
      record.durationMs = Number(process.hrtime.bigint() - record[STARTED]) / 1e6;
      res.writeHead(status, sanitizeReason(record.reason), h);
      res.end(body, contentType?.includes('iso-8859-1') ? 'latin1' : 'utf8');
    };

    /** HttpServletResponse.sendError as Jetty 9.4 renders it (Jersey calls it for body-less errors). */
    const sendError = (status, reason = STANDARD_REASONS[status], servlet = 'secret', extra = {}) => {
      const message = reason ?? '';
      const body =
        '<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html;charset=ISO-8859-1"/>\n' +
        `<title>Error ${status} ${escapeHtml(message)}</title>\n</head>\n` +
        `<body><h2>HTTP ERROR ${status} ${escapeHtml(message)}</h2>\n<table>\n` +
        `<tr><th>URI:</th><td>${escapeHtml(path)}</td></tr>\n` +
        `<tr><th>STATUS:</th><td>${status}</td></tr>\n` +
        `<tr><th>MESSAGE:</th><td>${escapeHtml(message)}</td></tr>\n` +
        `<tr><th>SERVLET:</th><td>${servlet}</td></tr>\n</table>\n\n</body>\n</html>\n`;
      send(status, {
        reason: message,
        body,
        contentType: 'text/html;charset=iso-8859-1',
        extra: { 'Cache-Control': 'must-revalidate,no-cache,no-store', ...extra },
      });
    };

    /** An Ozone result code: in the reason (Jetty 9.4 era) or in a text/plain body (Jetty 12). */
    const sendCode = (status, code) => {
      if (options.errorCodeIn === 'body') send(status, { body: code, contentType: 'text/plain' });
      else sendError(status, code);
    };

    if (options.latencyMs > 0) await new Promise((r) => setTimeout(r, options.latencyMs));

    // Only /secret/* is mapped to the Jersey servlet and the auth filter; anything else is Jetty's 404.
    if (path !== '/secret' && !path.startsWith('/secret/')) {
      sendError(404, 'Not Found', 'org.eclipse.jetty.servlet.ServletHandler$Default404Servlet-1');
      return;
    }

    // ---- Hadoop AuthenticationFilter + KerberosAuthenticationHandler ----
    // S3GatewayWebAdminServer adds the filter only when ozone.s3g.secret.http.enabled is true, so a
    // disabled endpoint answers its 400 without any challenge (and ignores a token).
    if (options.disabled) {
      serveSecret(req, path, record, null, { send, sendError, sendCode });
      return;
    }
    let identity = null;
    let cookieError = null;
    try {
      identity = tokenFromCookie(req);
    } catch (e) {
      cookieError = e.message; // "will be sent back in a 401 unless filter authenticates"
    }
    const unauthorized = (status, reason) => {
      // KerberosAuthenticationHandler sets the bare challenge; the filter then clears the cookie and sendError()s.
      if (status === 401 && !headers['WWW-Authenticate']) headers['WWW-Authenticate'] = 'Negotiate';
      setCookies.push(authCookie(''));
      sendError(status, reason);
    };
    if (!identity) {
      const authorization = req.headers.authorization;
      if (typeof authorization !== 'string' || !authorization.startsWith('Negotiate')) {
        unauthorized(401, cookieError ?? 'Authentication required');
        return;
      }
      const token = authorization.slice('Negotiate'.length).trim();
      if (seenTokens.has(token)) {
        unauthorized(
          403,
          'GSSException: Failure unspecified at GSS-API level (Mechanism level: Request is a replay (34))',
        );
        return;
      }
      if (token) seenTokens.add(token);
      let server;
      try {
        server = await kerberos.initializeServer(options.acceptor ?? '');
        await server.step(token);
      } catch (e) {
        unauthorized(403, gssExceptionText(e?.message));
        return;
      }
      if (server.response && options.mutual) headers['WWW-Authenticate'] = `Negotiate ${server.response}`;
      if (!server.contextComplete) {
        unauthorized(401, cookieError ?? 'Authentication required');
        return;
      }
      identity = { principal: server.username, via: 'negotiate', target: server.targetName ?? null };
      if (options.setCookie) {
        const expires = Date.now() + options.cookieValiditySec * 1000;
        const raw = `u=${shortName(identity.principal)}&p=${identity.principal}&t=kerberos&e=${expires}`;
        setCookies.push(authCookie(`${raw}&s=${sign(raw)}`));
      }
    }
    record.principal = identity.principal;
    record.authVia = identity.via;
    if (identity.target) record.acceptorTarget = identity.target;
    serveSecret(req, path, record, identity, { send, sendError, sendCode });
  }

  function serveSecret(req, path, record, identity, { send, sendError, sendCode }) {
    // ---- Jersey: @Path("/") with PUT/DELETE and @Path("/{username}") ----
    const sub = path.slice('/secret'.length);
    let username = null;
    if (sub !== '' && sub !== '/') {
      const m = /^\/([^/]+)\/?$/.exec(sub);
      if (!m) {
        sendError(404);
        return;
      }
      try {
        username = decodeURIComponent(m[1]);
      } catch {
        sendError(400, 'Bad Request');
        return;
      }
    }
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      send(200, { extra: { Allow: 'DELETE,OPTIONS,PUT' } });
      return;
    }
    if (method !== 'PUT' && method !== 'DELETE') {
      sendError(405, 'Method Not Allowed', 'secret', { Allow: 'DELETE,OPTIONS,PUT' });
      return;
    }

    // Name-bound request filters run after matching, before the resource method.
    if (options.disabled) {
      // S3SecretEnabledEndpointRequestFilter: an entity, so no sendError page.
      send(400, { body: 'S3 Secret endpoint is disabled.', contentType: 'text/plain' });
      return;
    }
    if (options.adminOnly && !isAdmin(identity.principal)) {
      sendError(403); // S3SecretAdminFilter, Ozone 2.x with authorization on
      return;
    }
    if (username !== null) {
      if (options.userForm405) {
        sendError(405); // HDDS-11040, the temporary 1.4.1-era disable
        return;
      }
      if (!isAdmin(identity.principal)) {
        sendError(403);
        return;
      }
    }

    const user = username ?? identity.principal;
    record.user = user;
    if (method === 'PUT') {
      if (Object.hasOwn(secrets, user)) {
        sendCode(400, 'S3_SECRET_ALREADY_EXISTS');
        return;
      }
      const secret = options.presetSecrets?.[user] ?? randomBytes(32).toString('hex');
      secrets[user] = secret;
      const xml =
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
        `<S3Secret><awsAccessKey>${escapeXmlText(user)}</awsAccessKey>` +
        `<awsSecret>${escapeXmlText(secret)}</awsSecret></S3Secret>`;
      send(200, { body: xml, contentType: 'application/xml' });
      return;
    }
    if (!Object.hasOwn(secrets, user)) {
      sendCode(404, 'S3_SECRET_NOT_FOUND');
      return;
    }
    delete secrets[user];
    send(200);
  }

  const server = createServer((req, res) => {
    const started = process.hrtime.bigint();
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const record = {
      seq: requests.length + 1,
      time: new Date().toISOString(),
      method: req.method,
      path: q >= 0 ? rawUrl.slice(0, q) : rawUrl,
      query: q >= 0 ? rawUrl.slice(q + 1) : null,
      headers: redactHeaders(req.headers),
      principal: null,
      authVia: null,
      user: null,
      status: 0,
      reason: '',
      durationMs: 0,
    };
    Object.defineProperty(record, STARTED, { value: started, enumerable: false });
    requests.push(record);
    // Drain any body: Ozone ignores it.
    req.resume();
    handle(req, res, record).catch((e) => {
      record.error = String(e?.stack ?? e);
      if (!res.headersSent) {
        record.status = 500;
        record.reason = 'Server Error';
        res.writeHead(500, 'Server Error', { 'Content-Length': 0 });
      }
      res.end();
    });
  });
  server.keepAliveTimeout = 30_000;

  return {
    server,
    get options() {
      return options;
    },
    setOptions(partial) {
      options = { ...options, ...partial };
      if (partial.existingSecrets) secrets = { ...secrets, ...partial.existingSecrets };
    },
    requests: () => requests,
    secrets: () => ({ ...secrets }),
    reset() {
      requests = [];
      secrets = { ...options.existingSecrets };
    },
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.host, () => resolve(server.address().port));
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function main() {
  const raw = process.argv[2] ?? process.env.OZS3_GATEWAY_OPTIONS ?? '{}';
  const gateway = createGateway(parseOptions(raw));
  const port = await gateway.listen();
  const shutdown = async (code = 0) => {
    await gateway.close();
    process.exit(code);
  };
  if (process.send) {
    process.on('message', async (msg) => {
      const { id, type } = msg ?? {};
      let result = null;
      try {
        if (type === 'requests') result = gateway.requests();
        else if (type === 'secrets') result = gateway.secrets();
        else if (type === 'reset') gateway.reset();
        else if (type === 'setOptions') gateway.setOptions(msg.options ?? {});
        else if (type === 'close') {
          process.send({ id, ok: true, result: null }, () => void shutdown(0));
          return;
        } else throw new Error(`unknown message type ${String(type)}`);
        process.send({ id, ok: true, result });
      } catch (e) {
        process.send({ id, ok: false, error: String(e?.message ?? e) });
      }
    });
    // The parent is gone (even if it was SIGKILLed): do not outlive it.
    process.on('disconnect', () => void shutdown(0));
    process.send({ type: 'ready', port });
  }
  process.stdout.write(`listening ${port}\n`);
  process.on('SIGTERM', () => void shutdown(0));
  process.on('SIGINT', () => void shutdown(0));
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('gateway-server.mjs')) {
  main().catch((e) => {
    process.stderr.write(`gateway-server: ${e?.stack ?? e}\n`);
    process.exit(1);
  });
}
