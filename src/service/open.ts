/**
 * Plan → SecretService. Prepares what the transport needs in this process (keytab login, realm
 * pinning, TLS trust, the dispatcher the proxy decision asks for) and returns the REST or the OM
 * implementation. Heavy modules load here, on first use, never for --help.
 */
import { readFile } from 'node:fs/promises';
import { AuthError, NetworkError, Ozs3Error } from '../errors.js';
import type { Deps } from '../deps.js';
import type { ConnectionPlan, CredentialPlan, OmTarget, RestTarget } from '../plan/plan.js';
import type { OmServiceOptions } from '../om/service.js';
import type { SecretService } from './secret-service.js';

export interface OpenOptions {
  /** How many requests may run at once (a batch's concurrency). */
  connections: number;
}

export function makeTrace(plan: Pick<ConnectionPlan, 'verbose'>, deps: Deps): ((line: string) => void) | undefined {
  return plan.verbose ? (line) => deps.io.err(`* ${line}\n`) : undefined;
}

const KEYTAB_MAGIC = 0x05;

/**
 * The keytab named with --keytab / KRB5_CLIENT_KTNAME: readable and really a keytab (MIT's format
 * starts 0x05 0x01 or 0x05 0x02). Otherwise GSSAPI would say "can't find client principal … in
 * cache collection", which names neither the file nor the problem.
 */
export async function checkKeytabFile(credentials: CredentialPlan): Promise<void> {
  if (credentials.mode !== 'keytab' || !credentials.keytabName?.startsWith('FILE:')) return;
  const path = credentials.keytabName.slice('FILE:'.length);
  const given = credentials.keytab!;
  let head: Buffer;
  try {
    head = (await readFile(path)).subarray(0, 2);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new AuthError('KRB_KEYTAB_UNREADABLE', `cannot read keytab ${given.value} (${code}; from ${given.from})`, {
      cause: error,
    });
  }
  if (head.length < 2 || head[0] !== KEYTAB_MAGIC || (head[1] !== 0x01 && head[1] !== 0x02)) {
    throw new AuthError('KRB_NOT_A_KEYTAB', `${given.value} is not a Kerberos keytab (from ${given.from})`, {
      hint: 'export one with kadmin ktadd, ipa-getkeytab or ktutil; check it with klist -kt FILE',
    });
  }
}

/** Sets the keytab login's env, before any GSSAPI call reads it. */
export async function prepareCredentials(
  plan: ConnectionPlan,
  deps: Deps,
  trace?: (line: string) => void,
): Promise<void> {
  const { credentials } = plan;
  await checkKeytabFile(credentials);
  if (credentials.mode === 'keytab') {
    const { prepareKeytabLogin } = await import('../auth/kerberos-env.js');
    prepareKeytabLogin(deps.env, credentials.keytabName!);
    trace?.(
      `kerberos: logging in from keytab ${credentials.keytab!.value}${credentials.principal ? ` as ${credentials.principal.value}` : ''} into a private in-memory cache`,
    );
  }
}

/** The OM transport's options, from the plan (the service and doctor's probe alike). */
export function omServiceOptions(
  plan: ConnectionPlan,
  target: OmTarget,
  trace: ((line: string) => void) | undefined,
): OmServiceOptions {
  return {
    target: { serviceId: target.serviceId?.value, nodes: target.nodes.value, principal: target.principal.value },
    protection: target.protection?.value,
    waitBetweenRetriesMs: target.waitBetweenRetriesMs?.value,
    principal: plan.credentials.principal?.value,
    keytab: plan.credentials.keytab?.value,
    timeoutMs: plan.timeoutMs.value,
    retries: plan.retries.value,
    trace,
  };
}

export async function openSecretService(plan: ConnectionPlan, deps: Deps, opts: OpenOptions): Promise<SecretService> {
  if (deps.openService) return deps.openService(plan, opts);
  const trace = makeTrace(plan, deps);
  await prepareCredentials(plan, deps, trace);
  if (plan.target.transport === 'om') {
    const { createOmSecretService } = await import('../om/service.js');
    const warned = new Set<string>();
    return createOmSecretService({
      ...omServiceOptions(plan, plan.target, trace),
      // As for plain http://: say so when nothing but authentication protects the connection.
      onEstablished: (facts) => {
        const host = facts.address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
        if (facts.protection !== 'authentication' || isLoopbackHost(host) || warned.has(facts.address)) return;
        warned.add(facts.address);
        deps.io.err(
          `ozs3: warning: the OM at ${facts.address} protects its RPC with authentication only (hadoop.rpc.protection): the secret crosses the network unencrypted\n`,
        );
      },
    });
  }
  return openRestService(plan, plan.target, deps, opts, trace);
}

async function openRestService(
  plan: ConnectionPlan,
  target: RestTarget,
  deps: Deps,
  opts: OpenOptions,
  trace: ((line: string) => void) | undefined,
): Promise<SecretService> {
  const endpoint = target.endpoint.value;
  trace?.(`endpoint ${endpoint.href} (from ${target.endpoint.from})`);
  const host = endpoint.hostname.replace(/^\[|\]$/g, '');
  if (target.realm) {
    const { pinServiceRealm } = await import('../auth/kerberos-env.js');
    pinServiceRealm(deps.env, target.service.value.slice(target.service.value.indexOf('@') + 1), target.realm.value);
  }
  trace?.(
    `kerberos: service principal ${target.service.value.replace('@', '/')}${target.realm ? `@${target.realm.value}` : ' (realm from krb5.conf [domain_realm])'}`,
  );
  if (target.proxy.url) trace?.(`proxy ${target.proxy.shown} (${target.proxy.from})`);
  if (endpoint.protocol === 'http:' && !isLoopbackHost(host)) {
    deps.io.err(`ozs3: warning: plain http:// to ${endpoint.host}: the secret crosses the network unencrypted\n`);
  }
  if (!target.mutualAuth.value) {
    deps.io.err('ozs3: warning: --no-mutual-auth: answers without a mutual-authentication token are accepted\n');
  }

  const { createSpnegoNegotiator } = await import('../auth/spnego.js');
  const negotiator = createSpnegoNegotiator({
    service: target.service.value,
    principal: plan.credentials.principal?.value,
    keytab: plan.credentials.keytabName,
    trace,
  });
  // Start the first handshake now (env is final): it runs on the thread pool while the HTTP stack loads.
  const firstNegotiation = negotiator().catch(async (error: unknown) => {
    throw await explainUnknownServer(error, host, target);
  });
  firstNegotiation.catch(() => {}); // reported when the first request takes it

  let dispatcher = deps.dispatcher;
  if (!dispatcher) {
    const { resolveTlsOptions } = await import('../http/tls.js');
    const tls = await resolveTlsOptions(target.tls);
    if (target.tls.insecure)
      deps.io.err('ozs3: warning: --insecure: the TLS certificate of the endpoint is not verified\n');
    const { createDispatcher } = await import('../http/dispatcher.js');
    dispatcher = await createDispatcher({
      connections: opts.connections,
      connectTimeoutMs: plan.timeoutMs.value,
      tls,
      proxyUrl: target.proxy.url,
    });
  }
  const { RestSecretService } = await import('../rest/service.js');
  return new RestSecretService({
    endpoint,
    servicePrincipal: `${target.service.value.replace('@', '/')}${target.realm ? `@${target.realm.value}` : ''}`,
    negotiator,
    firstNegotiation,
    mutualAuth: target.mutualAuth.value,
    reuseCookie: endpoint.protocol === 'https:' || isLoopbackHost(host),
    timeoutMs: plan.timeoutMs.value,
    retries: plan.retries.value,
    dispatcher,
    trace,
  });
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || /^127\./.test(host) || host === '::1';
}

/**
 * "Server not found in Kerberos database" for a host that does not even resolve is a typo in the
 * host name, not a Kerberos problem: say that (exit 7, as doctor's dns check does). Through a proxy
 * the host need not resolve here, so the Kerberos cause stands.
 */
async function explainUnknownServer(error: unknown, host: string, target: RestTarget): Promise<unknown> {
  if (!(error instanceof Ozs3Error) || error.code !== 'KRB_UNKNOWN_SERVER' || target.proxy.url) return error;
  const { lookup } = await import('node:dns/promises');
  try {
    await lookup(host);
    return error;
  } catch (dnsError) {
    const code = (dnsError as NodeJS.ErrnoException).code ?? 'error';
    if (code !== 'ENOTFOUND' && code !== 'EAI_AGAIN') return error;
    return new NetworkError('DNS', `cannot resolve host ${host} (${code})`, {
      hint: 'check the host name in --endpoint and DNS',
      cause: dnsError,
    });
  }
}
