/**
 * The checks for the REST transport: what getsecret depends on, in the order a user fixes it —
 * credentials, krb5.conf, the service principal, DNS, TCP, TLS, the clock, the endpoint, the
 * gateway login, the AWS files. Each reads the plan; network checks take the proxy the plan chose.
 */
import type { Dispatcher } from 'undici';
import { ExitCode, Ozs3Error } from '../errors.js';
import type { Negotiation } from '../auth/spnego.js';
import type { RestTarget } from '../plan/plan.js';
import { fail, ok, skip, warn, withTimeout } from './check.js';
import type { DoctorContext } from './context.js';
import {
  checkKrb5Config,
  checkServicePrincipal,
  confirmServicePrincipal,
  describeServiceTarget,
  type Credentials,
  type ServicePrincipalOutcome,
  type ServiceTarget,
} from './credentials.js';
import { realmOf } from './krb5-conf.js';
import { bareHost, checkDns, checkTcp, checkTls, endpointPort, isLoopback, type HostRole } from './network.js';
import type { Probe } from './gateway.js';
import type { Check } from './runner.js';
import { awsFilesCheck, credentialsCheck, skipped, type CredentialFacts } from './shared-checks.js';
import { checkClientName, checkServiceTicket, serviceTicketTypes } from './ticket-details.js';
import { PORT_HINT } from '../rest/answers.js';
import { PROXY_HINT } from '../http/causes.js';

interface RestFacts extends CredentialFacts {
  service: ServicePrincipalOutcome & { target: ServiceTarget };
  resolved: boolean;
  connected: boolean;
  trusted: boolean;
  tlsOptions: { ca?: string[]; rejectUnauthorized?: boolean };
  probe: Probe;
  dispatcher: Dispatcher;
  loggedIn: boolean;
}

type RestCheck = Check<DoctorContext, RestFacts>;

function serviceTarget(ctx: DoctorContext, target: RestTarget, creds: Credentials | undefined): ServiceTarget {
  return describeServiceTarget(target.service.value, target.realm, ctx.krb5, realmOf(creds?.principal));
}

/** Ask the KDC for the service ticket, exactly as getsecret does (same service name, same realm pinning). */
async function askForServiceTicket(
  ctx: DoctorContext,
  target: RestTarget,
  creds: Credentials,
): Promise<ServicePrincipalOutcome & { target: ServiceTarget }> {
  const { startNegotiation } = await import('../auth/spnego.js');
  const svc = serviceTarget(ctx, target, creds);
  const host = target.endpoint.value.hostname;
  const negotiate = (): Promise<Negotiation> =>
    startNegotiation({
      service: target.service.value,
      principal: ctx.plan.credentials.principal?.value,
      keytab: ctx.plan.credentials.keytabName,
      trace: ctx.trace,
    });
  const outcome = await checkServicePrincipal(svc, creds, negotiate, host, () => reverseName(host));
  return { ...outcome, target: svc };
}

/** An IP address's host name, for the fix "service principals name hosts" (best effort, 1 s). */
async function reverseName(host: string): Promise<string | undefined> {
  try {
    const { promises: dns } = await import('node:dns');
    const found = await withTimeout(
      dns.lookupService(host.replace(/^\[|\]$/g, ''), 0).then((r) => r.hostname),
      1000,
      () => undefined,
    );
    return found && found !== host ? found : undefined;
  } catch {
    return undefined;
  }
}

/** A host that does not resolve explains Kerberos failures about it too: say to fix that first. */
function dnsFirst(fix: string | undefined, facts: Partial<RestFacts>, host: string): string | undefined {
  return facts.resolved === false
    ? `${host} does not resolve (see dns): check the host name first; then ${fix ?? ''}`
    : fix;
}

export function restChecks(ctx: DoctorContext, target: RestTarget): RestCheck[] {
  const url = target.endpoint.value;
  const host = bareHost(url);
  const proxy = target.proxy.url ? new URL(target.proxy.url) : undefined;
  const gatewayRole: HostRole = {
    what: 'the gateway',
    setting: `--endpoint (${target.endpoint.from})`,
    refusedFix: `is the S3 Gateway running, and is ${endpointPort(url)} its secret endpoint port? ${PORT_HINT}`,
  };
  const proxyRole: HostRole = {
    what: `the proxy (${target.proxy.from})`,
    setting: target.proxy.from,
    refusedFix: PROXY_HINT,
  };
  const netTimeout = ctx.timeoutMs + 500;

  const credentials = credentialsCheck<RestFacts>(ctx, (creds) => askForServiceTicket(ctx, target, creds));

  const dns: RestCheck = {
    name: 'dns',
    timeoutMs: ctx.timeoutMs,
    lateExit: ExitCode.network,
    async run() {
      if (!proxy) {
        const { result, resolved } = await checkDns(host, ctx.timeoutMs, gatewayRole);
        return { result, facts: { resolved } };
      }
      // Through a proxy the endpoint's name is the proxy's to resolve; this one is ours.
      const checked = await checkDns(proxy.hostname.replace(/^\[|\]$/g, ''), ctx.timeoutMs, proxyRole);
      const via = `requests go through the proxy ${target.proxy.shown} (${target.proxy.from}), which resolves ${host}`;
      return {
        result: { ...checked.result, detail: `${via}; proxy: ${checked.result.detail}` },
        facts: { resolved: checked.resolved },
      };
    },
  };

  const tcp: RestCheck = {
    name: 'tcp',
    after: ['dns'],
    timeoutMs: netTimeout,
    lateExit: ExitCode.network,
    async run(_, facts) {
      if (!facts.resolved) return skipped('tcp', `${proxy ? 'the proxy' : host} does not resolve`);
      const to = proxy
        ? { host: proxy.hostname.replace(/^\[|\]$/g, ''), port: Number(proxy.port || 80) }
        : { host, port: endpointPort(url) };
      const { result, connected } = await checkTcp(to, ctx.timeoutMs, proxy ? proxyRole : gatewayRole);
      return { result, facts: { connected } };
    },
  };

  const tls: RestCheck = {
    name: 'tls',
    after: ['tcp'],
    timeoutMs: netTimeout,
    lateExit: ExitCode.network,
    async run(_, facts) {
      if (!facts.connected) return skipped('tls', `no connection to ${proxy ? 'the proxy' : url.host}`);
      if (url.protocol !== 'https:') {
        const result = isLoopback(host)
          ? ok('tls', 'not used: plain http to a loopback address')
          : warn(
              'tls',
              'not used: plain http — the secret crosses the network unencrypted',
              'use the https port of the gateway if it has one (Ozone 2.x: 19879)',
            );
        return { result, facts: { trusted: true, tlsOptions: {} } };
      }
      const { resolveTlsOptions } = await import('../http/tls.js');
      let tlsOptions;
      try {
        tlsOptions = await resolveTlsOptions(target.tls);
      } catch (error) {
        if (!(error instanceof Ozs3Error)) throw error;
        return { result: fail('tls', error.exitCode, error.message, error.hint), facts: { trusted: false } };
      }
      const trust = [
        'trust: system CAs',
        target.tls.extraCaCerts ? `NODE_EXTRA_CA_CERTS ${target.tls.extraCaCerts}` : undefined,
        target.tls.cacert ? `${target.tls.cacert.value} (${target.tls.cacert.from})` : undefined,
      ]
        .filter(Boolean)
        .join(' + ');
      const checked = await checkTls(
        url,
        { ca: tlsOptions.ca, insecure: target.tls.insecure, trust },
        ctx.timeoutMs,
        target.proxy.url,
      );
      const viaProxy = proxy ? ` (through the proxy ${target.proxy.shown})` : '';
      return {
        result: { ...checked.result, detail: `${checked.result.detail}${viaProxy}` },
        facts: { trusted: checked.trusted, tlsOptions },
      };
    },
  };

  const gateway: RestCheck = {
    name: 'gateway',
    after: ['tls'],
    timeoutMs: netTimeout,
    lateExit: ExitCode.network,
    async run(_, facts) {
      if (!facts.trusted || !facts.tlsOptions)
        return skipped('gateway', facts.connected ? 'TLS failed' : 'not reached');
      const { createDispatcher } = await import('../http/dispatcher.js');
      const dispatcher = await createDispatcher({
        connections: 1,
        connectTimeoutMs: ctx.timeoutMs,
        tls: facts.tlsOptions,
        proxyUrl: target.proxy.url,
      });
      ctx.defer(() => dispatcher.close().catch(() => {}));
      const { sendProbe, probeFailure, classifyAnonymous } = await import('./gateway.js');
      try {
        const probe = await sendProbe(dispatcher, url, 'GET', url.pathname, undefined, ctx.timeoutMs, ctx.trace);
        return { result: classifyAnonymous(probe, url), facts: { probe, dispatcher } };
      } catch (error) {
        return { result: probeFailure('gateway', error, url) };
      }
    },
  };

  const clock: RestCheck = {
    name: 'clock',
    after: ['gateway'],
    timeoutMs: ctx.timeoutMs,
    lateExit: ExitCode.auth,
    async run(_, facts) {
      if (!facts.probe) return skipped('clock', 'no answer from the gateway');
      const { checkClock } = await import('./gateway.js');
      return { result: checkClock(facts.probe) };
    },
  };

  const servicePrincipal: RestCheck = {
    name: 'service principal',
    after: [credentials.name, 'dns'],
    timeoutMs: ctx.timeoutMs * 2,
    lateExit: ExitCode.auth,
    async run(_, facts) {
      const creds = facts.creds!;
      const svc = serviceTarget(ctx, target, creds);
      if (!creds.usable) {
        const credName = creds.mode === 'keytab' ? 'keytab' : 'ticket';
        return skipped(
          'service principal',
          `${svc.principal}: not checked without working credentials (see ${credName} above)`,
        );
      }
      const asked = facts.askedAlready
        ? { ...facts.askedAlready, target: svc }
        : await askForServiceTicket(ctx, target, creds);
      let result = asked.result;
      if (result.status === 'ok' && !svc.mapped && creds.mode === 'ticket' && !creds.klistMissing) {
        // Without a [domain_realm] entry the realm came by referral: only the cache shows which.
        const toolCtx = { env: ctx.deps.env, cwd: ctx.deps.cwd, timeoutMs: ctx.timeoutMs, trace: ctx.trace };
        const actual = await confirmServicePrincipal(svc, toolCtx).catch(() => undefined);
        if (actual && actual !== svc.principal) {
          result = { ...result, detail: result.detail.replace(svc.principal, `${actual} (by referral)`) };
          asked.target = { ...svc, principal: actual };
        }
      }
      if (result.status === 'fail') result = { ...result, fix: dnsFirst(result.fix, facts, host) };
      return { result, facts: { service: asked } };
    },
  };

  const krb5: RestCheck = {
    name: 'krb5.conf',
    after: [credentials.name, 'service principal'],
    timeoutMs: ctx.timeoutMs,
    lateExit: ExitCode.auth,
    run(_, facts) {
      const svc = facts.service?.target ?? serviceTarget(ctx, target, facts.creds);
      let result = checkKrb5Config(ctx.krb5, svc, facts.creds!, facts.service?.crossRealmFailure);
      if (result.status === 'fail') result = { ...result, fix: dnsFirst(result.fix, facts, host) };
      return { result };
    },
  };

  const spnego: RestCheck = {
    name: 'spnego',
    after: ['gateway', 'service principal'],
    timeoutMs: netTimeout,
    lateExit: ExitCode.network,
    async run(_, facts) {
      const { isNegotiateChallenge, sendProbe, classifyLogin, probeFailure } = await import('./gateway.js');
      if (!facts.probe || !facts.dispatcher) return skipped('spnego', 'the gateway was not reached');
      if (!isNegotiateChallenge(facts.probe))
        return skipped('spnego', 'the gateway does not ask for Kerberos (see gateway above)');
      const negotiation = facts.service?.negotiation;
      if (!negotiation) return skipped('spnego', 'no service ticket (see service principal above)');
      try {
        const probe = await sendProbe(
          facts.dispatcher,
          url,
          'GET',
          url.pathname,
          negotiation.authorization,
          ctx.timeoutMs,
          ctx.trace,
        );
        const result = await classifyLogin(probe, negotiation, facts.service.target.principal);
        return { result, facts: { loggedIn: result.status === 'ok' } };
      } catch (error) {
        return { result: probeFailure('spnego', error, url) };
      }
    },
  };

  // Whether the gateway gives *you* a secret is its admin rule, which only a PUT (creating a secret)
  // would show: Ozone's S3SecretAdminFilter is bound to PUT and DELETE, a GET never meets it.
  const adminRule: RestCheck = {
    name: 'admin rule',
    after: ['spnego'],
    timeoutMs: ctx.timeoutMs,
    lateExit: ExitCode.network,
    run: (_, facts) =>
      facts.loggedIn
        ? {
            result: skip(
              'admin rule',
              "not checked (only a PUT shows it, and that creates a secret): Ozone 2.x's gateway serves S3 admins only (ozone.s3.administrators); if getsecret is refused with 403, use --om HOST[:PORT] (the OzoneManager)",
            ),
          }
        : skipped('admin rule', 'not logged in (see spnego above)'),
  };

  const clientName: RestCheck = {
    name: 'client name',
    after: [credentials.name, 'service principal'],
    timeoutMs: ctx.timeoutMs,
    lateExit: ExitCode.auth,
    run: (_, facts) => ({ result: checkClientName(facts.service?.negotiation?.principal ?? facts.creds?.principal) }),
  };

  const serviceTicket: RestCheck = {
    name: 'service ticket',
    after: [credentials.name, 'service principal'],
    timeoutMs: ctx.timeoutMs * 2,
    lateExit: ExitCode.auth,
    async run(_, facts) {
      const negotiation = facts.service?.negotiation;
      if (!negotiation || !facts.service)
        return skipped('service ticket', 'no service ticket (see service principal above)');
      const principal = facts.service.target.principal;
      const types = await serviceTicketTypes(ctx, facts.creds!, principal);
      return { result: checkServiceTicket(principal, types, negotiation.tokenBytes) };
    },
  };

  // The report's order; each check still waits for the ones it reads.
  return [
    credentials,
    clientName,
    krb5,
    servicePrincipal,
    serviceTicket,
    dns,
    tcp,
    tls,
    clock,
    gateway,
    spnego,
    adminRule,
    awsFilesCheck<RestFacts>(ctx),
  ];
}
