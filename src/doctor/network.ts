/** Checks 4–5: DNS, TCP and TLS to the endpoint, each with its own deadline. */
import { promises as dns } from 'node:dns';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type DetailedPeerCertificate, type PeerCertificate } from 'node:tls';
import { ExitCode, sanitizeText } from '../errors.js';
import { PROXY_HINT, mapNetworkError } from '../http/causes.js';
import { PORT_HINT } from '../rest/answers.js';

export { PORT_HINT };
import { describeRemaining, fail, ok, warn, type CheckResult } from './check.js';

/** A certificate that runs out within this is worth a warning. */
const CERT_WARNING_MS = 14 * 24 * 3600_000;

export function bareHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

export function endpointPort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || /^127\./.test(host) || host === '::1';
}

/** Check 4: A/AAAA (as the connection will resolve it), and a CNAME, best effort. */
export interface Endpoint {
  host: string;
  port: number;
}

/** What the DNS and TCP checks say about a host: its role and the fixes that name the right setting. */
export interface HostRole {
  /** e.g. 'the gateway', 'the proxy', 'the OM om1'. */
  what: string;
  /** Where the host name came from, for the fix (e.g. '--endpoint'). */
  setting: string;
  /** The fix when the port refuses connections. */
  refusedFix: string;
}

export async function checkDns(
  host: string,
  timeoutMs: number,
  role: HostRole,
  name = 'dns',
): Promise<{ result: CheckResult; resolved: boolean }> {
  if (isIP(host) !== 0) return { result: ok(name, `${host} is an IP address: nothing to resolve`), resolved: true };
  let addresses: string[];
  try {
    addresses = (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOTFOUND') {
      return {
        result: fail(
          name,
          ExitCode.network,
          `cannot resolve ${host}: no such host (NXDOMAIN, ENOTFOUND)`,
          `check the host name in ${role.setting}: ${role.what}'s fully qualified name, no typo`,
        ),
        resolved: false,
      };
    }
    return {
      result: fail(
        name,
        ExitCode.network,
        `cannot resolve ${host} (${code})`,
        code === 'EAI_AGAIN'
          ? 'the DNS server did not answer: check /etc/resolv.conf and the network'
          : 'check the host name and DNS',
      ),
      resolved: false,
    };
  }
  const shown = addresses.slice(0, 4).join(', ') + (addresses.length > 4 ? ` (+${addresses.length - 4})` : '');
  const cname = await lookupCname(host, timeoutMs);
  if (cname && cname.toLowerCase() !== host.toLowerCase()) {
    return {
      result: ok(
        name,
        `${host} → CNAME ${cname} → ${shown}; Hadoop does not canonicalize: the service principal names the host as ${role.what} has it in its own config, which may be either name`,
      ),
      resolved: true,
    };
  }
  return { result: ok(name, `${host} → ${shown}`), resolved: true };
}

async function lookupCname(host: string, timeoutMs: number): Promise<string | undefined> {
  // Names without a dot (localhost, short names) go to /etc/hosts or search domains, not a CNAME.
  if (!host.includes('.') || host.endsWith('.localhost')) return undefined;
  const resolver = new dns.Resolver({ timeout: Math.min(1000, timeoutMs), tries: 1 });
  let timer: NodeJS.Timeout | undefined;
  try {
    const cname = await Promise.race([
      resolver.resolveCname(host).then((names) => names[0]),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), Math.min(1500, timeoutMs));
        timer.unref();
      }),
    ]);
    return cname;
  } catch {
    return undefined; // ENODATA (no CNAME) and resolver trouble alike: best effort
  } finally {
    clearTimeout(timer);
    resolver.cancel();
  }
}

/** A plain TCP connection to host:port. */
export async function checkTcp(
  target: Endpoint,
  timeoutMs: number,
  role: HostRole,
  name = 'tcp',
): Promise<{ result: CheckResult; connected: boolean }> {
  const { host, port } = target;
  const started = performance.now();
  const outcome = await new Promise<{ address?: string; code?: string }>((resolve) => {
    const socket = netConnect({ host, port, timeout: timeoutMs });
    socket.once('connect', () => {
      const address = socket.remoteAddress;
      socket.destroy();
      resolve({ address: address ?? host });
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve({ code: 'TIMEOUT' });
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      socket.destroy();
      resolve({ code: error.code ?? 'error' });
    });
  });
  const ms = Math.round(performance.now() - started);
  const shownTarget = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (outcome.address !== undefined) {
    const shown = outcome.address.includes(':') ? `[${outcome.address}]` : outcome.address;
    return { result: ok(name, `connected to ${role.what} at ${shown}:${port} in ${ms} ms`), connected: true };
  }
  const failed = (detail: string, fix: string) => ({
    result: fail(name, ExitCode.network, detail, fix),
    connected: false,
  });
  switch (outcome.code) {
    case 'ECONNREFUSED':
      return failed(`connection to ${role.what} at ${shownTarget} refused: nothing listens there`, role.refusedFix);
    case 'TIMEOUT':
    case 'ETIMEDOUT':
      return failed(
        `no answer from ${role.what} at ${shownTarget} within ${timeoutMs / 1000} s`,
        'a firewall may drop the packets or the host is down; raise --timeout on a slow network',
      );
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return failed(`${shownTarget} is unreachable (${outcome.code})`, 'check the network route (VPN?)');
    default:
      return failed(`cannot connect to ${shownTarget} (${outcome.code})`, 'check the host, the port and the network');
  }
}

/**
 * A CONNECT tunnel through an HTTP proxy to host:port, as undici's ProxyAgent opens it for the
 * command: the TLS check then runs over it, so doctor sees the path the command takes.
 */
export async function openTunnel(proxyUrl: string, target: Endpoint, timeoutMs: number): Promise<Socket> {
  const { request } = await import('node:http');
  const proxy = new URL(proxyUrl);
  const authority = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
  const headers: Record<string, string> = { host: authority };
  if (proxy.username) {
    const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
    headers['proxy-authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
  return new Promise<Socket>((resolve, reject) => {
    const req = request({
      host: proxy.hostname.replace(/^\[|\]$/g, ''),
      port: Number(proxy.port || 80),
      method: 'CONNECT',
      path: authority,
      headers,
      timeout: timeoutMs,
    });
    req.once('connect', (res, socket) => {
      if (res.statusCode === 200) resolve(socket);
      else {
        socket.destroy();
        reject(Object.assign(new Error(`Proxy response (${res.statusCode})`), { code: 'PROXY' }));
      }
    });
    req.once('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TLS_TIMEOUT' })));
    req.once('error', reject);
    req.end();
  });
}

function formatName(name: PeerCertificate['subject'] | undefined): string {
  if (!name) return '?';
  const order = ['CN', 'O', 'OU', 'C'];
  const parts = Object.entries(name)
    .filter(([k]) => order.includes(k))
    .sort(([a], [b]) => order.indexOf(a) - order.indexOf(b))
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`);
  return sanitizeText(parts.join(', ') || '?', 200);
}

export interface TlsSettings {
  /** Trusted CAs when --cacert is given (roots + NODE_EXTRA_CA_CERTS + the file); else Node's defaults. */
  ca?: string[] | undefined;
  insecure: boolean;
  /** How the trust store was made, for the detail line. */
  trust: string;
}

/** Check 5b: the TLS handshake, the certificate and whether it is trusted for this host. */
export async function checkTls(
  url: URL,
  tls: TlsSettings,
  timeoutMs: number,
  proxyUrl?: string,
): Promise<{ result: CheckResult; trusted: boolean }> {
  const name = 'tls';
  const host = bareHost(url);
  const port = endpointPort(url);
  let tunnel: Socket | undefined;
  if (proxyUrl) {
    try {
      tunnel = await openTunnel(proxyUrl, { host, port }, timeoutMs);
    } catch (error) {
      const mapped = mapNetworkError(error, url, false, timeoutMs);
      return {
        result: fail(name, ExitCode.network, `through the proxy: ${mapped.message}`, mapped.hint ?? PROXY_HINT),
        trusted: false,
      };
    }
  }
  const outcome = await new Promise<{
    cert?: DetailedPeerCertificate;
    protocol?: string | null;
    authorized?: boolean;
    authError?: string;
    error?: unknown;
  }>((resolve) => {
    const socket = tlsConnect({
      ...(tunnel ? { socket: tunnel } : { host, port }),
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ...(tls.ca ? { ca: tls.ca } : {}),
      // Verify below, so that an untrusted certificate can still be described.
      rejectUnauthorized: false,
      timeout: timeoutMs,
    });
    socket.once('secureConnect', () => {
      const authError = socket.authorizationError;
      resolve({
        cert: socket.getPeerCertificate(true),
        protocol: socket.getProtocol(),
        authorized: socket.authorized,
        authError:
          authError === undefined || authError === null
            ? undefined
            : String((authError as unknown as { code?: string }).code ?? authError),
      });
      socket.destroy();
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve({ error: Object.assign(new Error('timeout'), { code: 'TLS_TIMEOUT' }) });
    });
    socket.once('error', (error) => {
      socket.destroy();
      resolve({ error });
    });
  });
  if (outcome.error) {
    if ((outcome.error as { code?: string }).code === 'TLS_TIMEOUT') {
      return {
        result: fail(
          name,
          ExitCode.network,
          `no TLS handshake with ${host}:${port} within ${timeoutMs / 1000} s`,
          'is the endpoint really https? try http:// if the gateway serves plain HTTP',
        ),
        trusted: false,
      };
    }
    const mapped = mapNetworkError(outcome.error, url, false, timeoutMs);
    return {
      result: fail(
        name,
        ExitCode.network,
        mapped.message,
        mapped.hint ?? 'is the endpoint really https? try http:// if the gateway serves plain HTTP',
      ),
      trusted: false,
    };
  }
  const cert = outcome.cert;
  const expires = cert?.valid_to ? new Date(cert.valid_to) : undefined;
  const facts = [
    outcome.protocol ?? 'TLS',
    `subject ${formatName(cert?.subject)}`,
    `issuer ${formatName(cert?.issuer)}`,
    expires && !Number.isNaN(expires.getTime())
      ? `valid until ${expires.toISOString().slice(0, 10)} (${describeRemaining(expires.getTime() - Date.now())})`
      : undefined,
    tls.trust,
  ].filter(Boolean);
  const detail = facts.join(', ');
  if (!outcome.authorized) {
    const code = outcome.authError ?? 'UNTRUSTED';
    const mapped = mapNetworkError({ code }, url, false, timeoutMs);
    const cause =
      mapped.code.startsWith('TLS_') && mapped.code !== 'TLS_ERROR'
        ? mapped.message.replace(/^TLS to \S+ failed: /, '')
        : `not trusted (${code})`;
    if (tls.insecure) {
      return {
        result: warn(
          name,
          `${cause}; not verified because of --insecure: ${detail}`,
          'trust the certificate with --cacert FILE instead of --insecure',
        ),
        trusted: true,
      };
    }
    const fix = mapped.hint ?? 'trust the CA with --cacert FILE (PEM) or NODE_EXTRA_CA_CERTS';
    return { result: fail(name, ExitCode.network, `${cause}: ${detail}`, fix), trusted: false };
  }
  if (expires && expires.getTime() - Date.now() < CERT_WARNING_MS) {
    return {
      result: warn(name, `the certificate expires soon: ${detail}`, "the gateway's certificate needs renewing"),
      trusted: true,
    };
  }
  return { result: ok(name, `trusted: ${detail}`), trusted: true };
}
