/** Options every command shares, and turning them into a ready SecretClient. */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AuthError, LocalFileError, UsageError } from '../errors.js';
import type { Deps } from '../deps.js';
import type { SecretClient } from '../ozone/client.js';

export interface ConnectionOptions {
  endpoint?: string | undefined;
  cluster?: string | undefined;
  spn?: string | undefined;
  keytab?: string | undefined;
  principal?: string | undefined;
  cacert?: string | undefined;
  insecure?: boolean | undefined;
  timeout?: number | undefined;
  retries?: number | undefined;
  verbose?: boolean | undefined;
}

export const DEFAULT_TIMEOUT_SECONDS = 30;
export const DEFAULT_RETRIES = 2;

export function makeTrace(opts: ConnectionOptions, deps: Deps): ((line: string) => void) | undefined {
  return opts.verbose ? (line) => deps.io.err(`* ${line}\n`) : undefined;
}

/**
 * Fills in what the flags left open from OZS3_ENDPOINT, the --cluster preset and ozone-site.xml
 * (see config/settings.ts). Flags always win.
 */
export async function applySettings<
  T extends ConnectionOptions & { region?: string | undefined; s3Endpoint?: string | undefined },
>(opts: T, deps: Deps): Promise<T & { endpointSource?: string | undefined }> {
  const { resolveSettings } = await import('../config/settings.js');
  const settings = await resolveSettings(opts, deps);
  if (!settings.endpoint) {
    throw new UsageError('no endpoint: give --endpoint URL, set OZS3_ENDPOINT, or name a --cluster preset', {
      hint: 'e.g. --endpoint https://s3g.example.com:19879 (Ozone 2.x web admin port; 9879 on Ozone 1.4)',
    });
  }
  return {
    ...opts,
    endpoint: settings.endpoint,
    endpointSource: settings.endpointSource,
    spn: opts.spn ?? settings.spn,
    cacert: opts.cacert ?? settings.cacert,
    region: opts.region ?? settings.region,
    s3Endpoint: opts.s3Endpoint ?? settings.s3Endpoint,
  };
}

/** The --cacert file: readable, and holding at least one PEM certificate (else TLS would fail later, obscurely). */
async function readCaFile(path: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new LocalFileError('CACERT_UNREADABLE', `cannot read --cacert file ${path} (${code})`, { cause: error });
  }
  const { X509Certificate } = await import('node:crypto');
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  const parses = (block: string) => {
    try {
      return Boolean(new X509Certificate(block));
    } catch {
      return false;
    }
  };
  if (!blocks.some(parses)) {
    throw new LocalFileError('CACERT_INVALID', `the --cacert file ${path} holds no PEM certificate`, {
      hint: 'give the CA certificate as PEM (-----BEGIN CERTIFICATE-----); from DER: openssl x509 -inform der -in ca.der -out ca.pem',
    });
  }
  return pem;
}

/** NODE_EXTRA_CA_CERTS as Node itself treats it: used when readable; Node has already warned when not. */
async function readExtraCaCerts(path: string | undefined): Promise<string[]> {
  if (!path) return [];
  try {
    return [await readFile(path, 'utf8')];
  } catch {
    return [];
  }
}

export interface TlsOptions {
  ca?: string[];
  rejectUnauthorized?: boolean;
}

/**
 * The endpoint's TLS settings: `--cacert` adds to the system roots and NODE_EXTRA_CA_CERTS (setting
 * `ca` would otherwise replace both); `--insecure` stops verification. A bad --cacert is exit 9.
 */
export async function resolveTlsOptions(
  opts: Pick<ConnectionOptions, 'cacert' | 'insecure'>,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<TlsOptions> {
  const tls: TlsOptions = {};
  if (opts.cacert !== undefined) {
    const { rootCertificates } = await import('node:tls');
    const cacert = await readCaFile(resolve(cwd, opts.cacert));
    tls.ca = [...rootCertificates, ...(await readExtraCaCerts(env.NODE_EXTRA_CA_CERTS)), cacert];
  }
  if (opts.insecure) tls.rejectUnauthorized = false;
  return tls;
}

/** Validates the options, sets up keytab login and TLS, and opens one dispatcher for the run. */
export async function openSecretClient(opts: ConnectionOptions, deps: Deps, connections = 1): Promise<SecretClient> {
  const { normalizeEndpoint, SecretClient } = await import('../ozone/client.js');
  const { pinServiceRealm, prepareKeytabLogin, resolveServiceName, spnRealm, startNegotiation } =
    await import('../auth/spnego.js');
  const trace = makeTrace(opts, deps);
  if (!opts.endpoint) throw new UsageError('no endpoint: give --endpoint URL or set OZS3_ENDPOINT');
  const endpoint = normalizeEndpoint(opts.endpoint);
  trace?.(
    `endpoint ${endpoint.href}${(opts as { endpointSource?: string }).endpointSource ? ` (from ${(opts as { endpointSource?: string }).endpointSource})` : ''}`,
  );
  const service = resolveServiceName(opts.spn, endpoint.hostname);

  let keytab = opts.keytab ?? deps.env.KRB5_CLIENT_KTNAME;
  if (keytab === '') keytab = undefined;
  if (opts.keytab !== undefined) {
    const path = opts.keytab.replace(/^FILE:/, '');
    try {
      await readFile(resolve(deps.cwd, path));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new AuthError('KRB_KEYTAB_UNREADABLE', `cannot read keytab ${opts.keytab} (${code})`, { cause: error });
    }
  }
  if (keytab !== undefined) {
    prepareKeytabLogin(deps.env, { keytab, principal: opts.principal }, deps.cwd);
    trace?.(
      `kerberos: logging in from keytab ${keytab}${opts.principal ? ` as ${opts.principal}` : ''} into a private in-memory cache`,
    );
  }
  const realm = spnRealm(opts.spn);
  if (realm) pinServiceRealm(deps.env, service.slice(service.indexOf('@') + 1), realm);
  trace?.(
    `kerberos: service principal ${service.replace('@', '/')}${realm ? `@${realm}` : ' (realm from krb5.conf [domain_realm])'}`,
  );

  // Start the first handshake now (env is final): it runs on the thread pool while the HTTP stack loads.
  const firstNegotiation = startNegotiation({ service, principal: opts.principal, keytab, trace });
  firstNegotiation.catch(() => {}); // reported when the first request takes it

  const timeoutMs = Math.round((opts.timeout ?? DEFAULT_TIMEOUT_SECONDS) * 1000);
  let dispatcher = deps.dispatcher;
  if (!dispatcher) {
    const tls = await resolveTlsOptions(opts, deps.env, deps.cwd);
    if (opts.insecure) deps.io.err('ozs3: warning: --insecure: the TLS certificate of the endpoint is not verified\n');
    const { createDispatcher } = await import('../http/dispatcher.js');
    dispatcher = await createDispatcher({ connections, connectTimeoutMs: timeoutMs, tls, env: deps.env });
  }
  return new SecretClient({
    endpoint,
    service,
    principal: opts.principal,
    keytab,
    timeoutMs,
    retries: opts.retries ?? DEFAULT_RETRIES,
    dispatcher,
    trace,
    firstNegotiation,
  });
}
