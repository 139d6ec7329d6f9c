/**
 * `ozs3 doctor`: check, one line each, what getsecret depends on — credentials, krb5.conf, the
 * service principal, DNS, TCP, TLS, the clock, the endpoint and the gateway login, the AWS files —
 * and say what to fix. The report is the command's data: stdout. Nothing is created or revoked.
 */
import { ExitCode, Ozs3Error, sanitizeText, type ExitCodeValue } from '../errors.js';
import { decideColor } from '../io.js';
import type { Deps } from '../deps.js';
import type { Negotiation } from '../auth/spnego.js';
import { makeTrace, resolveTlsOptions, type ConnectionOptions, type TlsOptions } from './connect.js';
import { fail, ok, skip, warn, withTimeout, type CheckResult } from '../doctor/check.js';
import type { Krb5Config } from '../doctor/krb5-conf.js';

export interface DoctorOptions extends ConnectionOptions {
  json?: boolean | undefined;
  /** commander's --no-color. */
  color?: boolean | undefined;
}

export const DOCTOR_TIMEOUT_SECONDS = 5;

export interface DoctorReport {
  checks: CheckResult[];
  ok: boolean;
  exitCode: number;
}

export async function runDoctor(opts: DoctorOptions, deps: Deps): Promise<number> {
  const report = await diagnose(opts, deps);
  if (opts.json) {
    const checks = report.checks.map((c) => ({
      name: c.name,
      status: c.status,
      detail: sanitizeText(c.detail, 2000),
      fix: c.fix === undefined ? null : sanitizeText(c.fix, 2000),
    }));
    deps.io.out(`${JSON.stringify({ checks, ok: report.ok })}\n`);
  } else {
    deps.io.out(
      await renderReport(
        report.checks,
        decideColor(deps.env, deps.io.stdoutIsTTY, opts.color === false ? false : undefined),
      ),
    );
  }
  return report.exitCode;
}

export async function renderReport(checks: CheckResult[], color: boolean): Promise<string> {
  type Paint = (s: string) => string;
  let paint: Record<CheckResult['status'] | 'fix', Paint> = {
    ok: (s) => s,
    warn: (s) => s,
    fail: (s) => s,
    skip: (s) => s,
    fix: (s) => s,
  };
  if (color) {
    const { Chalk } = await import('chalk');
    const chalk = new Chalk({ level: 1 });
    paint = {
      ok: (s) => chalk.green(s),
      warn: (s) => chalk.yellow(s),
      fail: (s) => chalk.red.bold(s),
      skip: (s) => chalk.dim(s),
      fix: (s) => chalk.cyan(s),
    };
  }
  let text = '';
  for (const check of checks) {
    text += `${paint[check.status](check.status.padEnd(4))} ${check.name}: ${sanitizeText(check.detail, 2000)}\n`;
    if (check.fix && (check.status === 'warn' || check.status === 'fail'))
      text += `  ${paint.fix('fix:')} ${sanitizeText(check.fix, 2000)}\n`;
  }
  return text;
}

/** Runs one check with its deadline; a bug in one check becomes its line, not the end of the report. */
async function guarded<T>(
  ms: number,
  work: () => Promise<T>,
  onTimeout: () => T,
  onBug: (message: string) => T,
): Promise<T> {
  try {
    return await withTimeout(work(), ms, onTimeout);
  } catch (error) {
    return onBug(error instanceof Error ? error.message : String(error));
  }
}

const bug = (name: string) => (message: string) =>
  fail(
    name,
    ExitCode.internal,
    `internal error: ${message}`,
    'this is a bug in ozs3; run with --verbose and report it',
  );
const late = (name: string, exit: ExitCodeValue, ms: number, what: string) => () =>
  fail(name, exit, `${what}: no answer within ${ms / 1000} s`, 'raise --timeout, or check the network path');

/** HTTPS_PROXY / HTTP_PROXY for this URL unless NO_PROXY exempts the host (as curl reads them). */
function proxyFor(url: URL, env: NodeJS.ProcessEnv): string | undefined {
  const proxy = url.protocol === 'https:' ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  if (!proxy) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const noProxy = (env.NO_PROXY ?? env.no_proxy ?? '').split(/[\s,]+/).filter(Boolean);
  for (const raw of noProxy) {
    if (raw === '*') return undefined;
    const [entryHost, entryPort] = raw
      .toLowerCase()
      .replace(/^\*?\./, '')
      .split(':');
    if (entryPort && entryPort !== (url.port || (url.protocol === 'https:' ? '443' : '80'))) continue;
    if (host === entryHost || host.endsWith(`.${entryHost}`)) return undefined;
  }
  try {
    return new URL(proxy).host; // never its user:password
  } catch {
    return url.protocol === 'https:' ? 'named by HTTPS_PROXY' : 'named by HTTP_PROXY';
  }
}

export async function diagnose(flags: DoctorOptions, deps: Deps): Promise<DoctorReport> {
  const timeoutMs = Math.round((flags.timeout ?? DOCTOR_TIMEOUT_SECONDS) * 1000);
  const trace = makeTrace(flags, deps);
  // The environment as the user gave it; keytab login below rewrites KRB5CCNAME in deps.env.
  const userEnv: NodeJS.ProcessEnv = { ...deps.env };

  // --- endpoint: flags, OZS3_ENDPOINT, --cluster preset, ozone-site.xml (as getsecret resolves it)
  let endpointCheck: CheckResult;
  let endpoint: URL | undefined;
  let spn = flags.spn;
  let cacert = flags.cacert;
  try {
    const { resolveSettings } = await import('../config/settings.js');
    const settings = await resolveSettings(flags, deps);
    spn ??= settings.spn;
    cacert ??= settings.cacert;
    if (!settings.endpoint) {
      endpointCheck = fail(
        'endpoint',
        ExitCode.usage,
        'no endpoint: not given with --endpoint, OZS3_ENDPOINT, a --cluster preset or ozone-site.xml ($OZONE_CONF_DIR)',
        'give --endpoint https://s3g.example.com:19879 (Ozone 2.x web admin port; 9879 on Ozone 1.4)',
      );
    } else {
      const { normalizeEndpoint } = await import('../ozone/client.js');
      endpoint = normalizeEndpoint(settings.endpoint);
      endpointCheck = ok('endpoint', `${endpoint.href} (from ${settings.endpointSource ?? 'settings'})`);
    }
  } catch (error) {
    if (!(error instanceof Ozs3Error)) throw error;
    endpointCheck = fail('endpoint', error.exitCode, error.message, error.hint ?? 'see ozs3 doctor --help');
  }

  const credentials = await import('../doctor/credentials.js');
  const { loadKrb5Config, realmOf } = await import('../doctor/krb5-conf.js');
  const network = await import('../doctor/network.js');
  const ctx = { env: userEnv, cwd: deps.cwd, timeoutMs, trace };
  const creds = credentials.credentialMode(flags, userEnv, deps.cwd);
  const credName = creds.mode === 'keytab' ? 'keytab' : 'ticket';

  // --- the Kerberos chain: krb5.conf → credentials → service principal
  const kerberosChain = (async () => {
    let config: Krb5Config | undefined;
    try {
      config = await loadKrb5Config(userEnv);
    } catch {
      config = undefined;
    }
    const credCheck = await guarded(
      timeoutMs * 2,
      () =>
        creds.mode === 'keytab'
          ? credentials.checkKeytab(creds, ctx)
          : credentials.checkTicketCache(creds, ctx, config),
      late(credName, ExitCode.auth, timeoutMs * 2, credName === 'keytab' ? 'keytab login' : 'klist'),
      bug(credName),
    );
    if (credCheck.status === 'fail') creds.usable = false;
    return { config, credCheck };
  })();

  // --- the network chain: DNS → TCP → TLS → unauthenticated GET (+ clock)
  const networkChain = (async () => {
    const none = (name: string, why: string) => skip(name, why);
    if (!endpoint) {
      const why = 'no endpoint';
      return {
        dns: none('dns', why),
        tcp: none('tcp', why),
        tls: none('tls', why),
        clock: none('clock', why),
        gateway: none('gateway', why),
        reachable: false as const,
      };
    }
    const url = endpoint;
    const dns = await guarded(
      timeoutMs,
      () => network.checkDns(url, timeoutMs),
      () => ({ result: late('dns', ExitCode.network, timeoutMs, `resolving ${url.hostname}`)(), resolved: false }),
      (m) => ({ result: bug('dns')(m), resolved: false }),
    );
    const proxy = proxyFor(url, userEnv);
    if (!dns.resolved && !proxy) {
      const why = `${url.hostname} does not resolve`;
      return {
        dns: dns.result,
        tcp: none('tcp', why),
        tls: none('tls', why),
        clock: none('clock', why),
        gateway: none('gateway', why),
        reachable: false as const,
      };
    }
    const tcp = await guarded(
      timeoutMs + 500,
      () => network.checkTcp(url, timeoutMs, proxy),
      () => ({ result: late('tcp', ExitCode.network, timeoutMs, 'connecting')(), connected: false }),
      (m) => ({ result: bug('tcp')(m), connected: false }),
    );
    if (!tcp.connected) {
      const why = `no connection to ${url.host}`;
      return {
        dns: dns.result,
        tcp: tcp.result,
        tls: none('tls', why),
        clock: none('clock', why),
        gateway: none('gateway', why),
        reachable: false as const,
      };
    }

    // TLS settings exactly as getsecret builds them.
    let tlsOptions: TlsOptions = {};
    let tls: CheckResult;
    let trusted = true;
    if (url.protocol === 'https:') {
      let caProblem: CheckResult | undefined;
      let trust =
        'trust: system CAs' +
        (userEnv.NODE_EXTRA_CA_CERTS ? ` + NODE_EXTRA_CA_CERTS ${userEnv.NODE_EXTRA_CA_CERTS}` : '');
      try {
        tlsOptions = await resolveTlsOptions({ cacert, insecure: flags.insecure }, userEnv, deps.cwd);
        if (cacert !== undefined) trust += ` + --cacert ${cacert}`;
      } catch (error) {
        if (!(error instanceof Ozs3Error)) throw error;
        caProblem = fail('tls', error.exitCode, error.message, error.hint);
      }
      if (caProblem) {
        tls = caProblem;
        trusted = false;
      } else if (proxy) {
        tls = skip(
          'tls',
          `requests go through the proxy ${proxy}: the handshake is checked by the gateway request below`,
        );
      } else {
        const checked = await guarded(
          timeoutMs + 500,
          () => network.checkTls(url, { ca: tlsOptions.ca, insecure: Boolean(flags.insecure), trust }, timeoutMs),
          () => ({ result: late('tls', ExitCode.network, timeoutMs, 'TLS handshake')(), trusted: false }),
          (m) => ({ result: bug('tls')(m), trusted: false }),
        );
        tls = checked.result;
        trusted = checked.trusted;
      }
    } else {
      const host = network.bareHost(url);
      tls = network.isLoopback(host)
        ? ok('tls', 'not used: plain http to a loopback address')
        : warn(
            'tls',
            'not used: plain http — the secret crosses the network unencrypted',
            'use the https port of the gateway if it has one (Ozone 2.x: 19879)',
          );
    }
    if (!trusted) {
      const why = 'TLS failed';
      return {
        dns: dns.result,
        tcp: tcp.result,
        tls,
        clock: none('clock', why),
        gateway: none('gateway', why),
        reachable: false as const,
      };
    }

    const { createDispatcher } = await import('../http/dispatcher.js');
    const dispatcher = await createDispatcher({
      connections: 1,
      connectTimeoutMs: timeoutMs,
      tls: tlsOptions,
      env: userEnv,
    });
    const gatewayModule = await import('../doctor/gateway.js');
    const anonymous = await guarded(
      timeoutMs + 500,
      async (): Promise<{ probe: import('../doctor/gateway.js').Probe } | { error: CheckResult }> => {
        try {
          return {
            probe: await gatewayModule.sendProbe(dispatcher, url, 'GET', url.pathname, undefined, timeoutMs, trace),
          };
        } catch (error) {
          return { error: gatewayModule.probeFailure('gateway', error, url) };
        }
      },
      () => ({ error: late('gateway', ExitCode.network, timeoutMs, `GET ${url.pathname}`)() }),
      (m) => ({ error: bug('gateway')(m) }),
    );
    if ('error' in anonymous) {
      return {
        dns: dns.result,
        tcp: tcp.result,
        tls,
        clock: none('clock', 'no answer from the gateway'),
        gateway: anonymous.error,
        reachable: false as const,
        dispatcher,
      };
    }
    return {
      dns: dns.result,
      tcp: tcp.result,
      tls,
      clock: gatewayModule.checkClock(anonymous.probe),
      gateway: gatewayModule.classifyAnonymous(anonymous.probe, url),
      reachable: true as const,
      challenged: gatewayModule.isNegotiateChallenge(anonymous.probe),
      dispatcher,
      gatewayModule,
    };
  })();

  const awsCheck = guarded(
    timeoutMs,
    async () => (await import('../doctor/aws-files.js')).checkAwsFiles(userEnv, deps.homedir),
    late('aws files', ExitCode.localFiles, timeoutMs, 'reading'),
    bug('aws files'),
  );

  const { config, credCheck } = await kerberosChain;

  // --- check 3: the exact service principal, with a real GSS/SPNEGO step (as getsecret does)
  let spCheck: CheckResult = skip('service principal', 'no endpoint');
  let negotiation: Negotiation | undefined;
  let crossRealmFailure: string | undefined;
  let ticketCheck = credCheck;
  let target: import('../doctor/credentials.js').ServiceTarget | undefined;
  if (endpoint) {
    const { resolveServiceName, startNegotiation, prepareKeytabLogin, pinServiceRealm, spnRealm } =
      await import('../auth/spnego.js');
    let service: string | undefined;
    try {
      service = resolveServiceName(spn, endpoint.hostname);
    } catch (error) {
      if (!(error instanceof Ozs3Error)) throw error;
      spCheck = fail(
        'service principal',
        error.exitCode,
        error.message,
        'e.g. --spn HTTP@s3g.example.com or --spn HTTP/s3g.example.com@EXAMPLE.COM',
      );
    }
    if (service) {
      target = credentials.describeServiceTarget(service, spn, config, realmOf(creds.principal));
      const keytab = creds.keytab?.name;
      const negotiate = () => startNegotiation({ service: service!, principal: flags.principal, keytab, trace });
      if (!creds.usable) {
        spCheck = skip(
          'service principal',
          `${target.principal}: not checked without working credentials (see ${credName} above)`,
        );
      } else {
        if (keytab) prepareKeytabLogin(deps.env, { keytab, principal: flags.principal }, deps.cwd);
        // The same realm pinning getsecret does (commands/connect.ts), so both ask the KDC alike.
        const pinned = spnRealm(spn);
        if (pinned) pinServiceRealm(deps.env, service.slice(service.indexOf('@') + 1), pinned);
        const host = endpoint.hostname;
        const outcome = await guarded<import('../doctor/credentials.js').ServicePrincipalOutcome>(
          timeoutMs * 2,
          () =>
            credentials.checkServicePrincipal(target!, creds, negotiate, host, async () => {
              try {
                const { promises: dnsPromises } = await import('node:dns');
                const found = await withTimeout(
                  dnsPromises.lookupService(host.replace(/^\[|\]$/g, ''), 0).then((r) => r.hostname),
                  1000,
                  () => undefined,
                );
                return found && found !== host ? found : undefined;
              } catch {
                return undefined;
              }
            }),
          () => ({
            result: late(
              'service principal',
              ExitCode.auth,
              timeoutMs * 2,
              `asking the KDC for ${target!.principal}`,
            )(),
          }),
          (m) => ({ result: bug('service principal')(m) }),
        );
        spCheck = outcome.result;
        if (spCheck.status === 'ok' && !target.mapped && creds.mode === 'ticket' && !creds.klistMissing) {
          const actual = await credentials.confirmServicePrincipal(target, ctx).catch(() => undefined);
          if (actual && actual !== target.principal) {
            spCheck = { ...spCheck, detail: spCheck.detail.replace(target.principal, `${actual} (by referral)`) };
            target.principal = actual;
          }
        }
        negotiation = outcome.negotiation;
        crossRealmFailure = outcome.crossRealmFailure;
        if (creds.klistMissing) {
          ticketCheck = credentials.ticketFromGss(creds, outcome.gssError);
          // The ticket line carries the failure; the service principal was never really asked for.
          if (ticketCheck.status === 'fail')
            spCheck = skip('service principal', `${target.principal}: not checked without a ticket (see ticket above)`);
        }
      }
    }
  }
  let krbCheck = credentials.checkKrb5Config(config, target, creds, crossRealmFailure);

  const net = await networkChain;
  if (net.dns.status === 'fail' && endpoint) {
    // A host name that does not resolve explains Kerberos failures about it too: fix that first.
    const first = `${endpoint.hostname} does not resolve (see dns): check the host name first; then `;
    if (spCheck.status === 'fail') spCheck = { ...spCheck, fix: first + (spCheck.fix ?? '') };
    if (krbCheck.status === 'fail') krbCheck = { ...krbCheck, fix: first + (krbCheck.fix ?? '') };
  }

  // --- the gateway login: GET /secret with the token from check 3 (nothing changes)
  let loginCheck: CheckResult;
  if (!net.reachable || !('gatewayModule' in net) || !endpoint) {
    loginCheck = skip('spnego', 'the gateway was not reached');
  } else if (!net.challenged) {
    loginCheck = skip('spnego', 'the gateway does not ask for Kerberos (see gateway above)');
  } else if (!negotiation) {
    loginCheck = skip('spnego', 'no service ticket (see service principal above)');
  } else {
    const { gatewayModule, dispatcher } = net;
    const url = endpoint;
    const token = negotiation;
    loginCheck = await guarded(
      timeoutMs + 500,
      async () => {
        try {
          return await gatewayModule.classifyLogin(
            await gatewayModule.sendProbe(dispatcher, url, 'GET', url.pathname, token.authorization, timeoutMs, trace),
            token,
            target!.principal,
          );
        } catch (error) {
          return gatewayModule.probeFailure('spnego', error, url);
        }
      },
      late('spnego', ExitCode.network, timeoutMs, `GET ${url.pathname} with a token`),
      bug('spnego'),
    );
  }
  if ('dispatcher' in net && net.dispatcher) await net.dispatcher.close().catch(() => {});

  const checks: CheckResult[] = [
    endpointCheck,
    ticketCheck,
    krbCheck,
    spCheck,
    net.dns,
    net.tcp,
    net.tls,
    net.clock,
    net.gateway,
    loginCheck,
    await awsCheck,
  ];
  const firstFailure = checks.find((c) => c.status === 'fail');
  return {
    checks,
    ok: !firstFailure,
    exitCode: firstFailure ? (firstFailure.exitCode ?? ExitCode.internal) : ExitCode.ok,
  };
}
