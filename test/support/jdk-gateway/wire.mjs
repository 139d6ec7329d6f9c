#!/usr/bin/env node
/**
 * One HTTP/1.1 exchange, recorded byte for byte, for reporting what a gateway sends: makes a SPNEGO
 * token for a service from the ccache in KRB5CCNAME (unless told not to), sends the request over a
 * plain keep-alive socket (as a client such as ozs3 does: no `Connection: close`, which would change
 * the server's framing), reads one response (Content-Length, chunked, or up to the server's close),
 * and prints JSON: the raw status line, status, reason phrase, headers in order (name as sent), body,
 * and the token's size. Run it as a subprocess with the realm env: the kerberos library reads KRB5_*
 * at first use.
 *
 *   KRB5_CONFIG=… KRB5CCNAME=… node test/support/jdk-gateway/wire.mjs \
 *     '{"method":"PUT","url":"http://localhost:1234/secret","service":"HTTP@localhost"}'
 * Options: method, url, service (null: no Authorization), headers (extra), cookie, timeoutMs.
 */
import { createRequire } from 'node:module';
import { connect } from 'node:net';

const require = createRequire(import.meta.url);
const opts = JSON.parse(process.argv[2] ?? '{}');

async function negotiateToken(service) {
  const kerberos = require('kerberos');
  const client = await kerberos.initializeClient(service, {
    mechOID: kerberos.GSS_MECH_OID_SPNEGO,
    gssFlag: kerberos.GSS_C_MUTUAL_FLAG,
  });
  return client.step('');
}

/** Bytes of the first complete response in buf, or -1 while it is incomplete. */
function responseLength(buf) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return -1;
  const head = buf.subarray(0, end).toString('latin1');
  const bodyStart = end + 4;
  const length = /^content-length:\s*(\d+)\s*$/im.exec(head);
  if (length) return buf.length >= bodyStart + Number(length[1]) ? bodyStart + Number(length[1]) : -1;
  if (/^transfer-encoding:.*chunked/im.test(head)) {
    const last = buf.indexOf('\r\n0\r\n\r\n', bodyStart - 2);
    return last < 0 ? -1 : last + 7;
  }
  return -1; // delimited by the server closing the connection
}

function exchange(url, request, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname === 'localhost' ? '127.0.0.1' : url.hostname, port: Number(url.port) });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (result) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => {
      done = true;
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(request));
    socket.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      const n = responseLength(buf);
      if (n >= 0) finish(buf.subarray(0, n));
    });
    socket.on('error', (e) => {
      // A server may close right after answering (e.g. Jetty's 431) while the request is still
      // being written: keep what arrived.
      if (buf.length > 0) finish(buf);
      else if (!done) {
        done = true;
        clearTimeout(timer);
        reject(e);
      }
    });
    socket.on('close', () => finish(buf));
  });
}

try {
  const url = new URL(opts.url);
  const method = opts.method ?? 'PUT';
  const token = opts.service ? await negotiateToken(opts.service) : null;
  const lines = [`${method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, 'User-Agent: ozs3-wire'];
  if (token) lines.push(`Authorization: Negotiate ${token}`);
  if (opts.cookie) lines.push(`Cookie: ${opts.cookie}`);
  for (const [k, v] of Object.entries(opts.headers ?? {})) lines.push(`${k}: ${v}`);
  lines.push('Content-Length: 0', '', '');
  const raw = await exchange(url, lines.join('\r\n'), opts.timeoutMs ?? 10_000);
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = end >= 0 ? text.slice(0, end) : text;
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const m = /^HTTP\/\d\.\d (\d{3})(?: (.*))?$/.exec(statusLine);
  process.stdout.write(
    `${JSON.stringify({
      statusLine,
      status: m ? Number(m[1]) : 0,
      reason: m?.[2] ?? '',
      headers: headerLines.map((l) => {
        const i = l.indexOf(':');
        return [l.slice(0, i), l.slice(i + 1).trim()];
      }),
      body: end >= 0 ? text.slice(end + 4) : '',
      tokenBase64: token ? token.length : 0,
    })}\n`,
  );
} catch (e) {
  process.stderr.write(`wire: ${e?.message ?? e}\n`);
  process.exit(1);
}
