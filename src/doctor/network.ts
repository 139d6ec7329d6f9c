/** Checks 4–5: DNS, TCP and TLS to the endpoint, each with its own deadline. */
import { promises as dns } from 'node:dns';
import { connect as netConnect, isIP } from 'node:net';
import { connect as tlsConnect, type DetailedPeerCertificate, type PeerCertificate } from 'node:tls';
import { ExitCode, sanitizeText } from '../errors.js';
import { mapNetworkError } from '../ozone/client.js';
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

export const PORT_HINT =
  'Ozone 2.x serves /secret on the web admin port (19878 http / 19879 https: ozone.s3g.webadmin.http(s)-address); Ozone 1.4 on the S3 Gateway port (9878 / 9879)';

/** Check 4: A/AAAA (as the connection will resolve it), and a CNAME, best effort. */
export async function checkDns(url: URL, timeoutMs: number): Promise<{ result: CheckResult; resolved: boolean }> {
  const name = 'dns';
  const host = bareHost(url);
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
          "check the host name in --endpoint: the gateway's fully qualified name, no typo",
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
        `${host} → CNAME ${cname} → ${shown}; Hadoop does not canonicalize: the gateway's principal is HTTP/<the host in its own config>, which may be either name`,
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

/** Check 5a: a plain TCP connection to host:port. */
export async function checkTcp(
  url: URL,
  timeoutMs: number,
  proxy: string | undefined,
): Promise<{ result: CheckResult; connected: boolean }> {
  const name = 'tcp';
  const host = bareHost(url);
  const port = endpointPort(url);
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
  if (outcome.address !== undefined) {
    const shown = outcome.address.includes(':') ? `[${outcome.address}]` : outcome.address;
    return { result: ok(name, `connected to ${shown}:${port} in ${ms} ms`), connected: true };
  }
  const target = `${host}:${port}`;
  let result: CheckResult;
  switch (outcome.code) {
    case 'ECONNREFUSED':
      result = fail(
        name,
        ExitCode.network,
        `connection to ${target} refused: nothing listens there`,
        `is the S3 Gateway running, and is ${port} its secret endpoint port? ${PORT_HINT}`,
      );
      break;
    case 'TIMEOUT':
    case 'ETIMEDOUT':
      result = fail(
        name,
        ExitCode.network,
        `no answer from ${target} within ${timeoutMs / 1000} s`,
        'a firewall may drop the packets or the host is down; raise --timeout on a slow network',
      );
      break;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      result = fail(
        name,
        ExitCode.network,
        `${target} is unreachable (${outcome.code})`,
        'check the network route to the gateway (VPN?)',
      );
      break;
    default:
      result = fail(
        name,
        ExitCode.network,
        `cannot connect to ${target} (${outcome.code})`,
        'check the host, the port and the network',
      );
  }
  if (proxy) {
    // Requests go through the proxy: the direct path failing is not the whole story.
    result = warn(
      name,
      `${result.detail}; requests go through the proxy ${proxy}`,
      'see the gateway check below for the path through the proxy',
    );
    return { result, connected: true };
  }
  return { result, connected: false };
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
): Promise<{ result: CheckResult; trusted: boolean }> {
  const name = 'tls';
  const host = bareHost(url);
  const port = endpointPort(url);
  const outcome = await new Promise<{
    cert?: DetailedPeerCertificate;
    protocol?: string | null;
    authorized?: boolean;
    authError?: string;
    error?: unknown;
  }>((resolve) => {
    const socket = tlsConnect({
      host,
      port,
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
