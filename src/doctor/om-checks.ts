/**
 * The checks for the OzoneManager RPC transport: credentials, krb5.conf for the OM principal's
 * realm, and for every configured OM its DNS, TCP and the SASL handshake (the protection it
 * negotiates and the principal it proves), then the AWS files. No OMRequest is sent.
 */
import { ExitCode } from '../errors.js';
import type { OmNode, OmTarget } from '../plan/plan.js';
import { OM_DEFAULT_PORT } from '../plan/ozone-site.js';
import { omServiceOptions } from '../service/open.js';
import { fail, ok, warn } from './check.js';
import type { DoctorContext } from './context.js';
import { checkKrb5Config, describeServiceTarget } from './credentials.js';
import { realmOf } from './krb5-conf.js';
import { checkDns, checkTcp } from './network.js';
import type { Check } from './runner.js';
import { awsFilesCheck, credentialsCheck, skipped, type CredentialFacts } from './shared-checks.js';
import { checkClientName, checkServiceTicket, serviceTicketTypes } from './ticket-details.js';

interface OmFacts extends CredentialFacts {
  /** Per node label: resolved, connected. */
  resolved: Record<string, boolean>;
  connected: Record<string, boolean>;
  /** Per node label: the principal the handshake authenticated to, and the caller it proved. */
  authenticated: Record<string, { servicePrincipal: string; caller: string | undefined }>;
  /** Per node label: the principal a refused handshake had a ticket for (its types may say why). */
  refused: Record<string, string>;
}

type OmCheck = Check<DoctorContext, OmFacts>;

/** The OM principal for one node: `_HOST` becomes the node's host as configured (never reverse DNS). */
function nodePrincipal(pattern: string, node: OmNode): { principal: string; realm: string | undefined } {
  const [primaryAndHost, realm] = pattern.split('@') as [string, string | undefined];
  return { principal: primaryAndHost.replace('_HOST', node.host.toLowerCase()), realm };
}

export function omChecks(ctx: DoctorContext, target: OmTarget): OmCheck[] {
  const nodes = target.nodes.value;
  const label = (node: OmNode) => node.nodeId ?? `${node.host}:${node.port}`;
  const suffix = (node: OmNode) => (nodes.length > 1 ? ` ${label(node)}` : '');
  const setting = target.nodes.from;

  const credentials = credentialsCheck<OmFacts>(ctx, () => Promise.resolve(undefined));

  const krb5: OmCheck = {
    name: 'krb5.conf',
    after: [credentials.name],
    timeoutMs: ctx.timeoutMs,
    lateExit: ExitCode.auth,
    run(_, facts) {
      const first = nodes[0]!;
      const { principal, realm } = nodePrincipal(target.principal.value, first);
      const [primary, host] = principal.split('/') as [string, string];
      const pinned = realm ? { value: realm, from: target.principal.from } : undefined;
      const svc = describeServiceTarget(`${primary}@${host}`, pinned, ctx.krb5, realmOf(facts.creds?.principal));
      return { result: checkKrb5Config(ctx.krb5, svc, facts.creds!, undefined) };
    },
  };

  const perNode = nodes.flatMap((node): OmCheck[] => {
    const key = label(node);
    const role = {
      what: `the OM ${key}`,
      setting,
      refusedFix: `is the OzoneManager running there, and is ${node.port} its RPC port (ozone.om.address, default ${OM_DEFAULT_PORT})?`,
    };
    const dnsName = `dns${suffix(node)}`;
    const tcpName = `tcp${suffix(node)}`;
    const saslName = `sasl${suffix(node)}`;
    return [
      {
        name: dnsName,
        timeoutMs: ctx.timeoutMs,
        lateExit: ExitCode.network,
        async run() {
          const { result, resolved } = await checkDns(node.host, ctx.timeoutMs, role, dnsName);
          return { result, facts: { resolved: { [key]: resolved } } };
        },
      },
      {
        name: tcpName,
        after: [dnsName],
        timeoutMs: ctx.timeoutMs + 500,
        lateExit: ExitCode.network,
        async run(_, facts) {
          if (!facts.resolved?.[key]) return skipped(tcpName, `${node.host} does not resolve`);
          const { result, connected } = await checkTcp(node, ctx.timeoutMs, role, tcpName);
          return { result, facts: { connected: { [key]: connected } } };
        },
      },
      {
        name: saslName,
        after: [tcpName, credentials.name],
        timeoutMs: ctx.timeoutMs * 2,
        lateExit: ExitCode.auth,
        async run(_, facts) {
          if (!facts.connected?.[key]) return skipped(saslName, `no connection to ${key}`);
          if (!facts.creds?.usable) return skipped(saslName, 'not tried without working credentials (see above)');
          const { probeOm } = await import('../om/service.js');
          const opts = omServiceOptions(ctx.plan, target, ctx.trace);
          const [probe] = await probeOm({ ...opts, target: { ...opts.target, nodes: [node] } });
          if (!probe) return skipped(saslName, 'not probed');
          if (probe.error) {
            const result = fail(saslName, probe.error.exitCode, probe.error.message, probe.error.hint);
            // The OM refused after GSSAPI got a ticket: the service ticket check still lists its types.
            return probe.error.exitCode === ExitCode.auth && probe.servicePrincipal
              ? { result, facts: { refused: { [key]: probe.servicePrincipal } } }
              : { result };
          }
          const parts = [
            `${probe.caller ?? 'you'} authenticated to ${probe.servicePrincipal}`,
            probe.advertised ? `the OM names itself ${probe.advertised}` : 'the OM named no Kerberos principal',
            `protection ${probe.protection ?? '?'}${probe.offered?.length ? ` (offered: ${probe.offered.join(', ')})` : ''}`,
            `SASL mechanisms ${probe.auths.join(', ')}`,
            probe.handshakeMs !== undefined ? `${probe.handshakeMs} ms` : undefined,
          ].filter(Boolean);
          const detail = parts.join('; ');
          const learnt = {
            authenticated: { [key]: { servicePrincipal: probe.servicePrincipal, caller: probe.caller } },
          };
          if (probe.protection === 'authentication') {
            return {
              facts: learnt,
              result: warn(
                saslName,
                detail,
                'the OM accepts calls without integrity or privacy: ask its admins for hadoop.rpc.protection=privacy (the secret crosses the network in clear)',
              ),
            };
          }
          return { result: ok(saslName, detail), facts: learnt };
        },
      },
    ];
  });

  // After every node's handshake: the first OM that authenticated tells the client name and ticket.
  const allSasl = nodes.map((node) => `sasl${suffix(node)}`);
  const firstAuthenticated = (facts: Partial<OmFacts>) =>
    nodes.map((node) => facts.authenticated?.[label(node)]).find((a) => a !== undefined);
  const clientName: OmCheck = {
    name: 'client name',
    after: [credentials.name, ...allSasl],
    timeoutMs: ctx.timeoutMs,
    lateExit: ExitCode.auth,
    run: (_, facts) => ({ result: checkClientName(firstAuthenticated(facts)?.caller ?? facts.creds?.principal) }),
  };
  const serviceTicket: OmCheck = {
    name: 'service ticket',
    after: [credentials.name, ...allSasl],
    timeoutMs: ctx.timeoutMs * 2,
    lateExit: ExitCode.auth,
    async run(_, facts) {
      const principal =
        firstAuthenticated(facts)?.servicePrincipal ??
        nodes.map((node) => facts.refused?.[label(node)]).find((p) => p !== undefined);
      if (!principal) return skipped('service ticket', 'no OM authenticated you (see sasl above)');
      // Without a realm in the name, klist shows the one the KDC gave (findServiceTicket matches it).
      const types = await serviceTicketTypes(ctx, facts.creds!, principal);
      return { result: checkServiceTicket(principal, types, undefined) };
    },
  };

  return [credentials, clientName, krb5, ...perNode, serviceTicket, awsFilesCheck<OmFacts>(ctx)];
}
