/**
 * A scripted, misbehaving "gateway" on 127.0.0.1:0 for hardening tests. It speaks HTTP/1.1 by hand
 * over node:net (or node:tls), because node:http refuses to send most of what these tests need:
 * control characters in reason phrases, lying Content-Length, bytes that are not HTTP at all.
 * It never verifies Kerberos; it records every request (Authorization included) for assertions.
 *
 *   await using server = await startHostileServer((req, res) => res.send({ status: 503 }));
 *   // ozs3 getsecret --endpoint ${server.url}
 */
import { randomBytes } from 'node:crypto';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { cacheEnv, type Realm } from './realm.js';

export interface HostileRequest {
  seq: number;
  method: string;
  /** Request target as sent (origin form, or absolute form through a forwarding proxy). */
  target: string;
  /** Lower-cased header names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  /** Which TCP connection (1-based) carried it. */
  connection: number;
}

export interface HttpResponse {
  status: number;
  /** Reason phrase, sent byte for byte (control characters included). Default: a standard one. */
  reason?: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
  /** Content-Length to declare; default the body's length; `null` sends none and closes after the body. */
  contentLength?: number | null;
}

export interface Responder {
  readonly socket: Socket;
  /** A complete response with the given parts. */
  send(res: HttpResponse): void;
  /** Raw bytes, nothing added. */
  raw(bytes: string | Buffer): void;
  /** TCP RST. */
  reset(): void;
}

export type Handler = (req: HostileRequest, res: Responder) => void | Promise<void>;

export interface HostileServer extends AsyncDisposable {
  /** http(s)://localhost:<port>: the host name the test realm has HTTP/localhost for. */
  readonly url: string;
  readonly port: number;
  readonly requests: HostileRequest[];
  /** TCP connections accepted, TLS handshakes that failed included. */
  readonly connections: number;
  /** Handlers for the next requests, in order; the last one repeats. */
  script(...handlers: Handler[]): void;
  close(): Promise<void>;
}

export interface HostileServerOptions {
  /** Serve TLS with this key and certificate chain (PEM). */
  tls?: { key: string; cert: string };
}

const REASONS: Record<number, string> = {
  200: 'OK',
  204: 'No Content',
  302: 'Found',
  307: 'Temporary Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  418: "I'm a teapot",
  500: 'Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const MAX_HEAD = 64 * 1024;

export async function startHostileServer(
  first: Handler = respondWithSecret(),
  opts: HostileServerOptions = {},
): Promise<HostileServer> {
  let handlers: Handler[] = [first];
  let next = 0;
  const requests: HostileRequest[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  let served = 0;

  const onConnection = (socket: Socket) => {
    const connection = ++served;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // the client may reset; that is the point of half these tests
    let buffered = Buffer.alloc(0);
    let busy = false;

    const pump = async () => {
      if (busy) return;
      busy = true;
      try {
        for (;;) {
          // Not a request line (a TLS ClientHello, say): answer as an HTTP server would.
          if (buffered.length > 0 && !/^[A-Z]{1,16}( |$)/.test(buffered.subarray(0, 17).toString('latin1'))) {
            socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
            return;
          }
          const end = buffered.indexOf('\r\n\r\n');
          if (end < 0) {
            if (buffered.length > MAX_HEAD) socket.destroy();
            return;
          }
          const head = buffered.subarray(0, end).toString('latin1');
          const req = parseHead(head, requests.length + 1, connection);
          const bodyLength = Number(req.headers['content-length'] ?? 0) || 0;
          if (buffered.length < end + 4 + bodyLength) return;
          buffered = buffered.subarray(end + 4 + bodyLength);
          requests.push(req);
          const handler = handlers[Math.min(next++, handlers.length - 1)]!;
          await handler(req, createResponder(socket));
          if (socket.destroyed) return;
        }
      } finally {
        busy = false;
      }
    };
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      void pump().catch(() => socket.destroy());
    });
  };

  const server: Server = opts.tls
    ? createTlsServer({ key: opts.tls.key, cert: opts.tls.cert }, onConnection)
    : createNetServer(onConnection);
  server.on('connection', () => connections++);
  // TLS handshake failures (the client rejecting our certificate) are expected in TLS tests.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;

  let closing: Promise<void> | undefined;
  const hostile: HostileServer = {
    url: `${opts.tls ? 'https' : 'http'}://localhost:${port}`,
    port,
    requests,
    get connections() {
      return connections;
    },
    script(...h) {
      if (h.length === 0) throw new Error('script() needs at least one handler');
      handlers = h;
      next = 0;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
    [Symbol.asyncDispose]() {
      return hostile.close();
    },
  };
  return hostile;
}

function parseHead(head: string, seq: number, connection: number): HostileRequest {
  const [requestLine = '', ...lines] = head.split('\r\n');
  const [method = '', target = ''] = requestLine.split(' ');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { seq, method, target, headers, connection };
}

function createResponder(socket: Socket): Responder {
  return {
    socket,
    send(res) {
      const body = typeof res.body === 'string' ? Buffer.from(res.body, 'utf8') : (res.body ?? Buffer.alloc(0));
      const lines = [`HTTP/1.1 ${res.status} ${res.reason ?? REASONS[res.status] ?? 'Whatever'}`];
      for (const [name, value] of Object.entries(res.headers ?? {})) {
        for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
      }
      const length = res.contentLength === undefined ? body.length : res.contentLength;
      if (length === null) lines.push('connection: close');
      else lines.push(`content-length: ${length}`);
      socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]));
      if (length === null) socket.end();
    },
    raw(bytes) {
      socket.write(bytes);
    },
    reset() {
      socket.resetAndDestroy();
    },
  };
}

// ---- canned behaviours ---------------------------------------------------------------------

/** JAXB's S3Secret document, with the values inserted as given (escape them yourself). */
export function secretXml(accessKey: string, secret: string): string {
  return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><S3Secret><awsAccessKey>${accessKey}</awsAccessKey><awsSecret>${secret}</awsSecret></S3Secret>`;
}

export const GOOD_SECRET = 'c0ffee'.repeat(10) + 'beef';
/** What `ozs3 getsecret` prints for respondWithSecret()'s default answer. */
export const GOOD_OUTPUT = `awsAccessKey=alice@OZS3.TEST\nawsSecret=${GOOD_SECRET}\n`;

/** A well-behaved 200 with the S3Secret XML (default: alice and GOOD_SECRET). */
export function respondWithSecret(
  accessKey = 'alice@OZS3.TEST',
  secret = GOOD_SECRET,
  headers: Record<string, string | string[]> = {},
): Handler {
  return (_req, res) =>
    res.send({
      status: 200,
      headers: { 'content-type': 'application/xml', ...headers },
      body: secretXml(accessKey, secret),
    });
}

export function respondWith(response: HttpResponse): Handler {
  return (_req, res) => res.send(response);
}

/** Headers, then the body one byte every `intervalMs`, forever (until the client goes away). */
export function trickleBody(intervalMs = 200): Handler {
  return (_req, res) => {
    res.raw('HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ncontent-length: 4000\r\n\r\n');
    const timer = setInterval(() => {
      if (res.socket.destroyed) clearInterval(timer);
      else res.raw('<');
    }, intervalMs);
    res.socket.once('close', () => clearInterval(timer));
  };
}

/** Status line and headers, then an endless chunked body as fast as the client reads it. */
export function endlessBody(): Handler {
  return (_req, res) => {
    res.raw('HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ntransfer-encoding: chunked\r\n\r\n');
    const chunk = Buffer.from(`10000\r\n${'A'.repeat(0x10000)}\r\n`);
    const pump = () => {
      while (!res.socket.destroyed && res.socket.write(chunk));
      if (!res.socket.destroyed) res.socket.once('drain', pump);
    };
    pump();
  };
}

/** Half the declared body, then a TCP reset. */
export function resetMidBody(): Handler {
  return (_req, res) => {
    const body = secretXml('alice@OZS3.TEST', GOOD_SECRET);
    res.raw(
      `HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 60)}`,
    );
    setTimeout(() => res.reset(), 50);
  };
}

// ---- a forged mutual-authentication token ---------------------------------------------------

function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const length =
    n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, body]);
}

const KRB5_OID = Buffer.from('06092a864886f712010202', 'hex'); // 1.2.840.113554.1.2.2

/**
 * A SPNEGO NegTokenResp (accept-completed, mech krb5) carrying a krb5 AP-REP whose encrypted part
 * is random bytes: well-formed at every layer, so only the cryptographic check can reject it —
 * what a server without the service key, or a replayed answer from another session, would send.
 */
export function forgedMutualToken(): string {
  const encPart = der(0x30, der(0xa0, der(0x02, Buffer.from([18]))), der(0xa2, der(0x04, randomBytes(96))));
  const apRep = der(
    0x6f,
    der(0x30, der(0xa0, der(0x02, Buffer.from([5]))), der(0xa1, der(0x02, Buffer.from([15]))), der(0xa2, encPart)),
  );
  const mechToken = der(0x60, KRB5_OID, Buffer.from([0x02, 0x00]), apRep);
  const negTokenResp = der(
    0xa1,
    der(0x30, der(0xa0, der(0x0a, Buffer.from([0]))), der(0xa1, KRB5_OID), der(0xa2, der(0x04, mechToken))),
  );
  return negTokenResp.toString('base64');
}

/** NegTokenResp accept-completed with no response token at all, though mutual auth was requested. */
export const EMPTY_ACCEPT_TOKEN = Buffer.from('a1073005a0030a0100', 'hex').toString('base64');

// ---- the client side --------------------------------------------------------------------

/**
 * Readies a realm for CLI runs against these servers: alice with a ticket, and HTTP/localhost in
 * the KDC (the server checks nothing, but no token can be made for a service the KDC does not know).
 * Returns the CLI's env, for a ticket-cache user (no keytab login).
 */
export async function prepareClientRealm(realm: Realm): Promise<Record<string, string>> {
  await realm.addPrincipal('alice', { password: 'pw-alice' });
  await realm.addPrincipal('HTTP/localhost', { randkey: true });
  return cacheEnv(realm, await realm.kinit('alice', { password: 'pw-alice' }));
}

// ---- what every hostile case must show ----------------------------------------------------

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * The contract for a failure (docs/cli.md): the exit code, nothing on stdout, one `ozs3:` line and
 * at most one `hint:` line on stderr, no control character or escape sequence, no stack trace,
 * and done within the deadline. Returns the message line for further checks.
 */
export function checkCleanFailure(r: CliRun, code: number, deadlineMs = 5_000): string {
  const problems: string[] = [];
  if (r.code !== code) problems.push(`exit ${String(r.code)} (signal ${String(r.signal)}), expected ${code}`);
  if (r.stdout !== '') problems.push(`stdout is not empty: ${JSON.stringify(r.stdout.slice(0, 200))}`);
  // These servers cannot make a Kerberos mutual-authentication token: the runs pass --no-mutual-auth, which warns.
  const lines = r.stderr
    .replace(/\n$/, '')
    .split('\n')
    .filter((line) => !line.startsWith('ozs3: warning: --no-mutual-auth'));
  if (!/^ozs3: \S/.test(lines[0] ?? '')) problems.push('stderr does not start with one "ozs3: " line');
  if (lines.length > 2 || (lines.length === 2 && !/^hint: \S/.test(lines[1]!)))
    problems.push('stderr has more than the message and one hint line');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(r.stderr)) problems.push('stderr holds control characters');
  if (/\n\s+at /.test(r.stderr)) problems.push('stderr holds a stack trace');
  if (r.ms > deadlineMs) problems.push(`took ${Math.round(r.ms)} ms, deadline ${deadlineMs} ms`);
  if (problems.length > 0) throw new Error(`${problems.join('; ')}\n--- stderr ---\n${JSON.stringify(r.stderr)}`);
  return lines[0]!;
}
