/**
 * The connection plan: flags + env + `--cluster` preset + ozone-site.xml turned, in one pure step,
 * into everything a run needs to reach the secrets — which transport and address, the service
 * principal and its realm, keytab or ticket cache, TLS trust, the proxy decision, timeouts — each
 * value with where it came from. Commands and every doctor check read this plan; nothing else
 * re-derives it (docs/architecture.md).
 */
import { isAbsolute, resolve } from 'node:path';
import { UsageError, sanitizeText } from '../errors.js';
import type { ClusterPreset, OzoneSite } from './config-files.js';
import {
  OM_DEFAULT_PORT,
  namesOm,
  omFromOzoneSite,
  parseHostPort,
  restFromOzoneSite,
  type OmNode,
} from './ozone-site.js';
import { decideProxy, type ProxyDecision } from './proxy.js';

export type { OmNode } from './ozone-site.js';

/** A value and where it came from (a flag, a variable, a file and key, or a default). */
export interface Sourced<T> {
  readonly value: T;
  readonly from: string;
}

/** The flags every command shares (commander's camel-cased names). */
export interface ConnectionFlags {
  endpoint?: string | undefined;
  om?: string | undefined;
  omServiceId?: string | undefined;
  cluster?: string | undefined;
  spn?: string | undefined;
  keytab?: string | undefined;
  principal?: string | undefined;
  cacert?: string | undefined;
  insecure?: boolean | undefined;
  timeout?: number | undefined;
  retries?: number | undefined;
  /** commander's `--no-mutual-auth`: false when given. */
  mutualAuth?: boolean | undefined;
  verbose?: boolean | undefined;
}

export interface PlanInputs {
  flags: ConnectionFlags;
  env: NodeJS.ProcessEnv;
  cwd: string;
  preset?: ClusterPreset | undefined;
  site?: OzoneSite | undefined;
  /** The command's default deadline (doctor's is shorter). */
  defaultTimeoutSeconds: number;
}

export interface TlsPlan {
  /** --cacert (or the preset's), as an absolute path. */
  cacert?: Sourced<string> | undefined;
  /** NODE_EXTRA_CA_CERTS, which Node itself adds to the default trust store. */
  extraCaCerts?: string | undefined;
  insecure: boolean;
}

export interface RestTarget {
  transport: 'rest';
  /** Normalised: ends in /secret. */
  endpoint: Sourced<URL>;
  /** GSS host-based service name, e.g. HTTP@s3g.example.com. */
  service: Sourced<string>;
  /** The realm `--spn HTTP/host@REALM` pins, if any. */
  realm?: Sourced<string> | undefined;
  tls: TlsPlan;
  proxy: ProxyDecision;
  /** Refuse a 2xx answer without a mutual-authentication token (default) or accept it. */
  mutualAuth: Sourced<boolean>;
}

export interface OmTarget {
  transport: 'om';
  serviceId?: Sourced<string> | undefined;
  nodes: Sourced<OmNode[]>;
  /** The OM's principal pattern (`om/_HOST@REALM`; `_HOST` is each node's host as configured). */
  principal: Sourced<string>;
  /** hadoop.rpc.protection from ozone-site.xml, when it says. */
  protection?: Sourced<string> | undefined;
  /** ozone.client.wait.between.retries.millis: the wait before retrying a not-ready OM. */
  waitBetweenRetriesMs?: Sourced<number> | undefined;
}

export interface CredentialPlan {
  mode: 'ticket' | 'keytab';
  /** The keytab as the user named it, and as GSSAPI gets it (`FILE:/abs/path`). */
  keytab?: Sourced<string> | undefined;
  keytabName?: string | undefined;
  principal?: Sourced<string> | undefined;
  /** KRB5CCNAME when set (ticket mode). */
  cache?: Sourced<string> | undefined;
}

export interface ConnectionPlan {
  transport: Sourced<'rest' | 'om'>;
  target: RestTarget | OmTarget;
  credentials: CredentialPlan;
  timeoutMs: Sourced<number>;
  retries: Sourced<number>;
  /** For --write-aws. */
  s3Endpoint?: Sourced<string> | undefined;
  region?: Sourced<string> | undefined;
  verbose: boolean;
}

export const DEFAULT_TIMEOUT_SECONDS = 30;
export const DEFAULT_RETRIES = 2;

export const NO_TARGET_HINT =
  'e.g. --endpoint https://s3g.example.com:19879 (S3 Gateway; 9879 on Ozone 1.4), --om om.example.com:9862, or OZONE_CONF_DIR=/etc/ozone';

/** `--endpoint`: http(s) only; `/secret` appended unless the path already ends in it. */
export function normalizeEndpoint(raw: string): URL {
  const shown = sanitizeText(raw);
  // `host:port` parses as a URL whose scheme is the host: say what is missing.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(raw.trim())) {
    throw new UsageError(`invalid endpoint URL '${shown}': it needs a scheme`, {
      hint: `add http:// or https://, e.g. https://${shown.replace(/^\/+/, '')}`,
    });
  }
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new UsageError(`invalid endpoint URL '${shown}'`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UsageError(`invalid endpoint URL '${shown}': only http:// and https:// are supported`);
  }
  if (url.username || url.password) throw new UsageError('the endpoint URL must not carry a user name or password');
  url.search = '';
  url.hash = '';
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = path.endsWith('/secret') ? path : `${path}/secret`;
  return url;
}

const SPN_KERBEROS_FORM = /^([^/@\s]+)\/([^/@\s]+)(?:@([^/@\s]+))?$/;
const SPN_HOST_BASED_FORM = /^([^/@\s]+)@([^/@\s]+)$/;

/**
 * `--spn` as `HTTP@host` (GSS host-based form) or `HTTP/host[@REALM]` (Kerberos form) → the
 * host-based name the `kerberos` addon imports, and the realm when the Kerberos form names one.
 */
export function parseSpn(spn: string): { service: string; realm?: string | undefined } {
  const kerberosForm = SPN_KERBEROS_FORM.exec(spn);
  if (kerberosForm) return { service: `${kerberosForm[1]}@${kerberosForm[2]!.toLowerCase()}`, realm: kerberosForm[3] };
  if (SPN_HOST_BASED_FORM.test(spn)) return { service: spn };
  throw new UsageError(`invalid --spn '${sanitizeText(spn)}': expected HTTP@host or HTTP/host@REALM`);
}

/** Where a value from the preset came from. */
function presetSource(preset: ClusterPreset, key: string): string {
  return `${key} in [cluster ${preset.name}] of ${preset.path}`;
}

function pick<T>(...candidates: [T | undefined, string][]): Sourced<T> | undefined {
  for (const [value, from] of candidates) if (value !== undefined && value !== '') return { value, from };
  return undefined;
}

function restTarget(inputs: PlanInputs, endpoint: Sourced<string>, spn: Sourced<string> | undefined): RestTarget {
  const { flags, env, cwd, preset } = inputs;
  const url = normalizeEndpoint(endpoint.value);
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  let service: Sourced<string> = { value: `HTTP@${host}`, from: 'default: HTTP@<endpoint host>' };
  let realm: Sourced<string> | undefined;
  if (spn) {
    const parsed = parseSpn(spn.value);
    service = { value: parsed.service, from: spn.from };
    if (parsed.realm) realm = { value: parsed.realm, from: spn.from };
  }
  const cacert = pick<string>(
    [flags.cacert, '--cacert'],
    [preset?.values.cacert, preset ? presetSource(preset, 'cacert') : ''],
  );
  return {
    transport: 'rest',
    endpoint: { value: url, from: endpoint.from },
    service,
    realm,
    tls: {
      cacert: cacert && { value: resolve(cwd, cacert.value), from: cacert.from },
      extraCaCerts: env.NODE_EXTRA_CA_CERTS || undefined,
      insecure: Boolean(flags.insecure),
    },
    proxy: decideProxy(url, env),
    mutualAuth:
      flags.mutualAuth === false
        ? { value: false, from: '--no-mutual-auth' }
        : { value: true, from: 'default: required' },
  };
}

function omTarget(inputs: PlanInputs, spn: Sourced<string> | undefined): OmTarget {
  const { flags, preset, site } = inputs;
  const om = pick<string>([flags.om, '--om'], [preset?.values.om, preset ? presetSource(preset, 'om') : '']);
  const serviceId = pick<string>(
    [flags.omServiceId, '--om-service-id'],
    [preset?.values.omServiceId, preset ? presetSource(preset, 'om_service_id') : ''],
  );
  let nodes: Sourced<OmNode[]>;
  let sid: Sourced<string> | undefined;
  if (om) {
    const address = parseHostPort(om.value, OM_DEFAULT_PORT);
    if (!address) throw new UsageError(`invalid --om '${sanitizeText(om.value)}': expected HOST[:PORT]`);
    nodes = { value: [address], from: om.from };
  } else {
    if (!site || site.problem) {
      const why = site?.problem ? `: ${site.problem}` : '';
      throw new UsageError(
        `--om-service-id ${serviceId?.value ?? ''} needs the OM addresses from an ozone-site.xml${why}`,
        { hint: 'set OZONE_CONF_DIR to the directory that holds it, or name one OM with --om HOST[:PORT]' },
      );
    }
    const found = omFromOzoneSite(site.props, site.path, serviceId?.value);
    nodes = { value: found.nodes, from: found.keys };
    if (found.serviceId)
      sid = { value: found.serviceId, from: serviceId?.from ?? `ozone.om.service.ids in ${site.path}` };
  }
  const principal = spn ??
    pick<string>([site?.props.get('ozone.om.kerberos.principal'), `ozone.om.kerberos.principal in ${site?.path}`]) ?? {
      value: 'om/_HOST',
      from: 'default: om/<OM host>, realm from krb5.conf',
    };
  if (!/^[^/@\s]+\/[^/@\s]+(@[^/@\s]+)?$/.test(principal.value)) {
    throw new UsageError(
      `invalid OM principal '${sanitizeText(principal.value)}' (${principal.from}): expected om/HOST@REALM or om/_HOST@REALM`,
    );
  }
  const protection = pick<string>([site?.props.get('hadoop.rpc.protection'), `hadoop.rpc.protection in ${site?.path}`]);
  const waitKey = 'ozone.client.wait.between.retries.millis';
  const wait = Number(site?.props.get(waitKey));
  const waitBetweenRetriesMs =
    site?.props.has(waitKey) && Number.isFinite(wait) && wait >= 0
      ? { value: wait, from: `${waitKey} in ${site.path}` }
      : undefined;
  return { transport: 'om', serviceId: sid, nodes, principal, protection, waitBetweenRetriesMs };
}

function credentialPlan(flags: ConnectionFlags, env: NodeJS.ProcessEnv, cwd: string): CredentialPlan {
  const principal = pick<string>([flags.principal, '--principal']);
  const keytab = pick<string>([flags.keytab, '--keytab'], [env.KRB5_CLIENT_KTNAME, 'KRB5_CLIENT_KTNAME']);
  if (keytab) {
    const name = /^[A-Z]+:/.test(keytab.value)
      ? keytab.value
      : `FILE:${isAbsolute(keytab.value) ? keytab.value : resolve(cwd, keytab.value)}`;
    return { mode: 'keytab', keytab, keytabName: name, principal };
  }
  return { mode: 'ticket', principal, cache: pick<string>([env.KRB5CCNAME, 'KRB5CCNAME']) };
}

/** `--om ''` (an unset shell variable, say) names nothing: say so, before it reads as absent. */
function refuseEmptyFlags(flags: ConnectionFlags): void {
  const wanted: [keyof ConnectionFlags, string, string][] = [
    ['endpoint', '--endpoint', 'URL'],
    ['om', '--om', 'HOST[:PORT]'],
    ['omServiceId', '--om-service-id', 'ID'],
    ['cluster', '--cluster', 'NAME'],
    ['spn', '--spn', 'PRINCIPAL'],
    ['keytab', '--keytab', 'FILE'],
    ['principal', '--principal', 'PRINCIPAL'],
    ['cacert', '--cacert', 'FILE'],
  ];
  for (const [key, flag, what] of wanted) {
    if (typeof flags[key] === 'string' && flags[key].trim() === '')
      throw new UsageError(`${flag} is empty: expected ${what}`);
  }
}

/** The one step from inputs to plan. Throws UsageError for settings that cannot work. */
export function buildPlan(inputs: PlanInputs): ConnectionPlan {
  const { flags, env, preset, site } = inputs;
  refuseEmptyFlags(flags);
  const fromPreset = (key: string) => (preset ? presetSource(preset, key) : '');
  const omExplicit = flags.om !== undefined || flags.omServiceId !== undefined;
  // A flag beats the environment: --om with OZS3_ENDPOINT set means the OM.
  const restExplicit = pick<string>(
    [flags.endpoint, '--endpoint'],
    [omExplicit ? undefined : env.OZS3_ENDPOINT, 'OZS3_ENDPOINT'],
  );
  if (restExplicit && omExplicit) {
    throw new UsageError(
      `${restExplicit.from} (REST) and ${flags.om !== undefined ? '--om' : '--om-service-id'} (OM RPC) name two ways to the secrets: give one`,
    );
  }
  if (flags.om !== undefined && flags.omServiceId !== undefined) {
    throw new UsageError('--om names one OM and --om-service-id an HA service: give one');
  }
  const presetRest = preset?.values.endpoint !== undefined;
  const presetOm = preset?.values.om !== undefined || preset?.values.omServiceId !== undefined;
  if (presetRest && presetOm && !restExplicit && !omExplicit) {
    throw new UsageError(`[cluster ${preset.name}] in ${preset.path} names both an endpoint and an OM: keep one`);
  }
  const spn = pick<string>([flags.spn, '--spn'], [preset?.values.spn, fromPreset('spn')]);

  let transport: Sourced<'rest' | 'om'>;
  let target: RestTarget | OmTarget;
  if (restExplicit) {
    transport = { value: 'rest', from: restExplicit.from };
    target = restTarget(inputs, restExplicit, spn);
  } else if (omExplicit) {
    transport = { value: 'om', from: flags.om !== undefined ? '--om' : '--om-service-id' };
    target = omTarget(inputs, spn);
  } else if (presetRest) {
    transport = { value: 'rest', from: fromPreset('endpoint') };
    target = restTarget(inputs, { value: preset.values.endpoint!, from: fromPreset('endpoint') }, spn);
  } else if (presetOm) {
    transport = { value: 'om', from: fromPreset(preset.values.om !== undefined ? 'om' : 'om_service_id') };
    target = omTarget(inputs, spn);
  } else if (site && namesOm(site.props)) {
    // As `ozone s3 getsecret` does: the OM the configuration names.
    transport = { value: 'om', from: `ozone.om.* in ${site.path}` };
    target = omTarget(inputs, spn);
  } else {
    const found = site ? restFromOzoneSite(site.props) : undefined;
    if (!site) {
      throw new UsageError(
        'no endpoint: give --endpoint URL or OZS3_ENDPOINT (S3 Gateway), --om HOST[:PORT] (OzoneManager), a --cluster preset, or OZONE_CONF_DIR with an ozone-site.xml',
        { hint: NO_TARGET_HINT },
      );
    }
    if (!found?.endpoint) {
      const lack =
        site.problem ??
        `${site.path} names neither an OzoneManager (ozone.om.address, ozone.om.service.ids) nor an S3 Gateway (ozone.s3g.webadmin.https-address, ozone.s3g.webadmin.http-address)`;
      throw new UsageError(`no endpoint: ${lack}`, {
        hint: 'point OZONE_CONF_DIR at the cluster client configuration, or give --endpoint URL (S3 Gateway) or --om HOST[:PORT] (OzoneManager)',
      });
    }
    const from = `${found.key} in ${site.path}`;
    transport = { value: 'rest', from };
    target = restTarget(inputs, { value: found.endpoint, from }, spn);
  }

  const timeoutSeconds = pick<number>([flags.timeout, '--timeout']) ?? {
    value: inputs.defaultTimeoutSeconds,
    from: 'default',
  };
  // ozone-site.xml's S3 address belongs to the cluster only when the target itself came from that file.
  const fromSite =
    site !== undefined &&
    (transport.from.endsWith(site.path) || (target.transport === 'om' && target.nodes.from.endsWith(site.path)));
  const s3FromSite = fromSite ? restFromOzoneSite(site.props).s3Endpoint : undefined;
  return {
    transport,
    target,
    credentials: credentialPlan(flags, env, inputs.cwd),
    timeoutMs: { value: Math.round(timeoutSeconds.value * 1000), from: timeoutSeconds.from },
    retries: pick<number>([flags.retries, '--retries']) ?? { value: DEFAULT_RETRIES, from: 'default' },
    s3Endpoint: pick<string>(
      [preset?.values.s3Endpoint, fromPreset('s3_endpoint')],
      [s3FromSite, `ozone.s3g.http(s)-address in ${site?.path}`],
    ),
    region: pick<string>([preset?.values.region, fromPreset('region')]),
    verbose: Boolean(flags.verbose),
  };
}

/** The plan as lines of (what, value, where from): what `doctor` prints first and `-v` traces. */
export function describePlan(plan: ConnectionPlan): { name: string; value: string; from: string }[] {
  const rows: { name: string; value: string; from: string }[] = [];
  const add = (name: string, s: Sourced<unknown> | undefined, value?: string) => {
    if (s) rows.push({ name, value: value ?? String(s.value), from: s.from });
  };
  const { target, credentials } = plan;
  add(
    'transport',
    plan.transport,
    plan.transport.value === 'rest' ? 'REST (S3 Gateway, SPNEGO)' : 'OM RPC (Hadoop RPC, SASL/GSSAPI)',
  );
  if (target.transport === 'rest') {
    add('endpoint', target.endpoint, target.endpoint.value.href);
    add(
      'service principal',
      target.service,
      `${target.service.value.replace('@', '/')}${target.realm ? `@${target.realm.value}` : ' (realm from krb5.conf)'}`,
    );
    const trust = ['system CAs'];
    if (target.tls.extraCaCerts) trust.push(`NODE_EXTRA_CA_CERTS ${target.tls.extraCaCerts}`);
    if (target.tls.cacert) trust.push(target.tls.cacert.value);
    const trustFrom = target.tls.cacert?.from ?? (target.tls.extraCaCerts ? 'NODE_EXTRA_CA_CERTS' : 'default');
    if (target.endpoint.value.protocol === 'https:') {
      rows.push({
        name: 'tls trust',
        value: target.tls.insecure ? 'none: --insecure' : trust.join(' + '),
        from: target.tls.insecure ? '--insecure' : trustFrom,
      });
    }
    rows.push({ name: 'proxy', value: target.proxy.shown ?? 'none (direct)', from: target.proxy.from });
    add('mutual auth', target.mutualAuth, target.mutualAuth.value ? 'required' : 'not required (unsafe)');
  } else {
    add('om service', target.serviceId);
    add(
      'om nodes',
      target.nodes,
      target.nodes.value
        .map((n) => `${n.nodeId ? `${n.nodeId}=` : ''}${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`)
        .join(', '),
    );
    add('om principal', target.principal);
    add('rpc protection', target.protection);
  }
  if (credentials.mode === 'keytab') add('credentials', credentials.keytab, `keytab ${credentials.keytab!.value}`);
  else
    rows.push({
      name: 'credentials',
      value: `ticket cache ${credentials.cache?.value ?? '(default)'}`,
      from: credentials.cache?.from ?? 'default',
    });
  add('client principal', credentials.principal);
  add('timeout', plan.timeoutMs, `${plan.timeoutMs.value / 1000} s`);
  add('retries', plan.retries);
  add('s3 endpoint', plan.s3Endpoint);
  add('region', plan.region);
  return rows;
}
