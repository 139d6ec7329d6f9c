/**
 * Checks 1–3: the client's credentials (ticket cache or keytab), krb5.conf and its realm mapping of
 * the endpoint host, and whether the KDC issues a ticket for the exact service principal.
 */
import { randomBytes } from 'node:crypto';
import { stat, access, constants } from 'node:fs/promises';
import { isIP } from 'node:net';
import { userInfo } from 'node:os';
import { ExitCode, Ozs3Error, sanitizeText } from '../errors.js';
import { describeRemaining, fail, formatLocalTime, ok, skip, warn, type CheckResult } from './check.js';
import { hostRealm, realmOf, type Krb5Config } from './krb5-conf.js';
import type { Negotiation } from '../auth/spnego.js';
import type { CredentialPlan, Sourced } from '../plan/plan.js';
import { findTgt, keytabPrincipals, parseKeytabListing, parseKlist, runTool } from '../auth/klist.js';

/** A ticket that runs out within this is worth a warning: a long batch could outlive it. */
const EXPIRY_WARNING_MS = 10 * 60_000;

export interface CredentialContext {
  /** The environment as the user gave it (not changed by keytab login). */
  env: NodeJS.ProcessEnv;
  cwd: string;
  timeoutMs: number;
  trace?: ((line: string) => void) | undefined;
}

export interface Credentials {
  mode: 'ticket' | 'keytab';
  /** The keytab as ozs3 uses it (`FILE:/abs/path` …) and how the user named it. */
  keytab?: { name: string; given: string; from: string } | undefined;
  /** The client principal, when known. */
  principal?: string | undefined;
  /** Whether a service-ticket request can be tried. */
  usable: boolean;
  /** klist is not on PATH: the ticket check is decided by what GSS tells. */
  klistMissing: boolean;
  /** The ccache name ozs3 would use (from klist, KRB5CCNAME or the krb5.conf default). */
  cache?: string | undefined;
}

/** The credentials as the plan decided them (--keytab / KRB5_CLIENT_KTNAME, else the ticket cache). */
export function credentialsFromPlan(plan: CredentialPlan): Credentials {
  const base = { principal: plan.principal?.value, usable: true, klistMissing: false };
  if (plan.mode === 'ticket') return { mode: 'ticket', ...base };
  const keytab = { name: plan.keytabName!, given: plan.keytab!.value, from: plan.keytab!.from };
  return { mode: 'keytab', keytab, ...base };
}

const KLIST_MISSING_FIX =
  'install the MIT Kerberos client tools (Debian/Ubuntu: krb5-user; RHEL/Fedora: krb5-workstation) to see the ticket cache';

function defaultCacheName(env: NodeJS.ProcessEnv, config: Krb5Config | undefined): string {
  if (env.KRB5CCNAME) return env.KRB5CCNAME;
  const uid = String(userInfo().uid);
  const fromConf = config?.get('libdefaults', 'default_ccache_name');
  return (fromConf ?? 'FILE:/tmp/krb5cc_%{uid}').replace(/%\{uid\}/g, uid);
}

function kinitFix(principal: string | undefined): string {
  return `run kinit${principal ? ` ${principal}` : ''}, or log in with --keytab FILE --principal NAME`;
}

/** A check's verdict on the credentials, and what it learnt about them (a new object, never the input changed). */
export interface CredentialOutcome {
  result: CheckResult;
  creds: Credentials;
}

/** Check 1, ticket-cache flavour: `klist` → cache, principal, TGT expiry. */
export async function checkTicketCache(
  given: Credentials,
  ctx: CredentialContext,
  config: Krb5Config | undefined,
): Promise<CredentialOutcome> {
  const creds = { ...given };
  return { result: await ticketCacheLine(creds, ctx, config), creds };
}

async function ticketCacheLine(
  creds: Credentials,
  ctx: CredentialContext,
  config: Krb5Config | undefined,
): Promise<CheckResult> {
  const name = 'ticket';
  ctx.trace?.('doctor: klist');
  const listed = await runTool('klist', [], ctx.env, ctx.timeoutMs);
  const cacheName = defaultCacheName(ctx.env, config);
  creds.cache = cacheName;
  if (!listed.found) {
    creds.klistMissing = true;
    return warn(
      name,
      `klist is not on PATH, so the cache ${cacheName} cannot be listed; the service principal check shows whether a ticket works`,
      KLIST_MISSING_FIX,
    );
  }
  if (listed.timedOut)
    return fail(
      name,
      ExitCode.auth,
      `klist gave no answer within ${ctx.timeoutMs / 1000} s (cache ${cacheName})`,
      'check the credential cache (KRB5CCNAME) and the Kerberos setup',
    );
  const listing = parseKlist(listed.stdout);
  const cache = listing.cache ?? cacheName;
  creds.cache = cache;
  if (listed.code !== 0 || !listing.principal) {
    creds.usable = false;
    const reason = sanitizeText(listed.stderr.replace(/^klist:\s*/m, '').trim() || 'klist failed');
    if (/No credentials cache|not found|No such file|does not exist|No credentials found/i.test(reason)) {
      return fail(
        name,
        ExitCode.auth,
        `no Kerberos ticket: no credential cache at ${cache} (${reason})`,
        kinitFix(creds.principal),
      );
    }
    return fail(name, ExitCode.auth, `cannot read the credential cache ${cache}: ${reason}`, kinitFix(creds.principal));
  }
  const wanted = creds.principal;
  const sameName =
    wanted === undefined ||
    wanted === listing.principal ||
    (!wanted.includes('@') && listing.principal.startsWith(`${wanted}@`));
  const mismatch = sameName ? undefined : wanted;
  if (sameName) creds.principal = listing.principal;
  const tgt = findTgt(listing);
  const where = `${cache} (${ctx.env.KRB5CCNAME ? 'KRB5CCNAME' : 'default cache'}): ${listing.principal}`;
  if (!tgt) {
    creds.usable = false;
    return fail(
      name,
      ExitCode.auth,
      `no ticket-granting ticket in ${where} (${listing.tickets.length} other tickets)`,
      kinitFix(listing.principal),
    );
  }
  const now = Date.now();
  if (!tgt.expires) {
    // A date this parser does not know: let klist itself say whether the cache is still valid.
    const valid = await runTool('klist', ['-s'], ctx.env, ctx.timeoutMs);
    if (valid.code !== 0) {
      creds.usable = false;
      return fail(
        name,
        ExitCode.auth,
        `the ticket in ${where} has expired (expires ${tgt.expiresText})`,
        kinitFix(listing.principal),
      );
    }
    return ok(name, `${where}, ticket-granting ticket expires ${tgt.expiresText}`);
  }
  const left = tgt.expires.getTime() - now;
  if (left <= 0) {
    creds.usable = false;
    const renewable = tgt.renewUntil && tgt.renewUntil.getTime() > now;
    return fail(
      name,
      ExitCode.auth,
      `the ticket in ${where} has expired (${formatLocalTime(tgt.expires)}, ${describeRemaining(left)})`,
      renewable
        ? `run kinit -R (renewable until ${formatLocalTime(tgt.renewUntil!)}) or kinit ${listing.principal}`
        : kinitFix(listing.principal),
    );
  }
  const detail = `${where}, ticket-granting ticket expires ${formatLocalTime(tgt.expires)} (${describeRemaining(left)})`;
  if (mismatch) {
    const collection = /^(DIR|KEYRING|KCM|API):/.test(cache);
    const text = `${detail}; but --principal is ${mismatch}`;
    const fix = `kinit ${mismatch}, or leave out --principal to use ${listing.principal}`;
    if (collection) return warn(name, `${text} (the cache collection may hold it: klist -l)`, fix);
    creds.usable = false;
    return fail(name, ExitCode.auth, text, fix);
  }
  if (left < EXPIRY_WARNING_MS) return warn(name, detail, `renew it soon: kinit -R or kinit ${listing.principal}`);
  return ok(name, detail);
}

/** Check 1, keytab flavour: readable, holds the principal, and kinit from it works. */
export async function checkKeytab(given: Credentials, ctx: CredentialContext): Promise<CredentialOutcome> {
  const creds = { ...given };
  return { result: await keytabLine(creds, ctx), creds };
}

async function keytabLine(creds: Credentials, ctx: CredentialContext): Promise<CheckResult> {
  const name = 'keytab';
  const kt = creds.keytab!;
  const label = `${kt.given} (${kt.from})`;
  const envFix = kt.from === 'KRB5_CLIENT_KTNAME' ? '; or unset KRB5_CLIENT_KTNAME to use your ticket cache' : '';
  const notes: string[] = [];
  let looseMode: string | undefined;
  if (kt.name.startsWith('FILE:') || kt.name.startsWith('WRFILE:')) {
    const path = kt.name.replace(/^(WR)?FILE:/, '');
    try {
      const info = await stat(path);
      if (!info.isFile()) {
        creds.usable = false;
        return fail(
          name,
          ExitCode.auth,
          `keytab ${label} is not a file`,
          `give the keytab file with --keytab FILE${envFix}`,
        );
      }
      await access(path, constants.R_OK);
      const mode = info.mode & 0o777;
      notes.push(`mode ${mode.toString(8).padStart(4, '0')}`);
      if (mode & 0o077) looseMode = `chmod 600 ${path}: a keytab is a password`;
    } catch (error) {
      creds.usable = false;
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      return fail(
        name,
        ExitCode.auth,
        `cannot read keytab ${label} (${code})`,
        `check the path and its permissions${envFix}`,
      );
    }
  }
  ctx.trace?.(`doctor: klist -kt ${kt.name}`);
  const listed = await runTool('klist', ['-kt', kt.name], ctx.env, ctx.timeoutMs);
  let principals: string[] = [];
  if (!listed.found) {
    notes.push('klist not on PATH: entries not listed');
  } else if (listed.code !== 0) {
    creds.usable = false;
    const reason = sanitizeText(listed.stderr.replace(/^klist:\s*/m, '').trim() || 'klist failed');
    return fail(
      name,
      ExitCode.auth,
      `cannot read keytab ${label}: ${reason}`,
      `check the file with klist -kt${envFix}`,
    );
  } else {
    const entries = keytabPrincipals(parseKeytabListing(listed.stdout));
    principals = entries.map((e) => e.principal);
    if (entries.length === 0) {
      creds.usable = false;
      return fail(
        name,
        ExitCode.auth,
        `keytab ${label} holds no keys`,
        `export the principal's keys into it (kadmin ktadd / ipa-getkeytab)${envFix}`,
      );
    }
    notes.push(entries.map((e) => `${e.principal} kvno ${e.kvno}`).join(', '));
  }
  const wanted = creds.principal;
  if (wanted && principals.length > 0) {
    const matches = principals.filter((p) => p === wanted || (!wanted.includes('@') && p.startsWith(`${wanted}@`)));
    if (matches.length === 0) {
      creds.usable = false;
      return fail(
        name,
        ExitCode.auth,
        `keytab ${label} holds ${principals.join(', ')}, not --principal ${wanted}`,
        `use --principal ${principals[0]}, or a keytab that holds ${wanted}`,
      );
    }
    creds.principal = matches[0];
  }
  // Without --principal MIT logs in as the keytab's first entry.
  creds.principal ??= principals[0];
  const loginAs = creds.principal;
  if (loginAs) {
    ctx.trace?.(`doctor: kinit -k -t ${kt.name} ${loginAs} (into a MEMORY cache)`);
    const login = await runTool(
      'kinit',
      ['-k', '-t', kt.name, '-c', `MEMORY:ozs3-doctor-${randomBytes(6).toString('hex')}`, loginAs],
      ctx.env,
      ctx.timeoutMs,
    );
    if (login.found && (login.code !== 0 || login.timedOut)) {
      creds.usable = false;
      const reason = login.timedOut
        ? `no answer within ${ctx.timeoutMs / 1000} s`
        : sanitizeText(login.stderr.replace(/^kinit:\s*/m, '').trim());
      return fail(
        name,
        ExitCode.auth,
        `cannot log in from keytab ${label} as ${loginAs}: ${reason}`,
        keytabLoginFix(reason) + envFix,
      );
    }
    if (login.found) notes.push(`kinit as ${loginAs} works`);
  }
  const detail = `${label}: ${notes.join('; ')}`;
  return looseMode ? warn(name, `${detail} — readable by group or others`, looseMode) : ok(name, detail);
}

function keytabLoginFix(reason: string): string {
  if (/Preauthentication failed|Password incorrect|Decrypt integrity|bad integrity/i.test(reason)) {
    return "the keytab's key is out of date (the password or key version changed): export a fresh keytab";
  }
  if (/Client .*not found/i.test(reason))
    return 'the KDC does not know this principal: check --principal and the realm';
  if (/Cannot (contact|find) any KDC|Cannot find KDC|unable to reach/i.test(reason))
    return 'check the [realms] section of krb5.conf (KRB5_CONFIG) and that the KDC is reachable';
  if (/no suitable keys|Key table entry not found/i.test(reason))
    return 'the keytab has no key for this principal: check with klist -kt';
  return 'check with: klist -kt <keytab>; kinit -k -t <keytab> <principal>';
}

/** With klist missing, the GSS outcome decides the ticket line. */
export function ticketFromGss(given: Credentials, gssError: Ozs3Error | undefined): CredentialOutcome {
  const creds = { ...given };
  return { result: ticketFromGssLine(creds, gssError), creds };
}

function ticketFromGssLine(creds: Credentials, gssError: Ozs3Error | undefined): CheckResult {
  const cache = creds.cache ?? 'the default cache';
  if (!gssError) {
    return warn(
      'ticket',
      `klist is not on PATH; a service ticket was obtained with the cache ${cache}${creds.principal ? ` as ${creds.principal}` : ''}`,
      KLIST_MISSING_FIX,
    );
  }
  if (gssError.code === 'KRB_NO_TICKET' || gssError.code === 'KRB_TICKET_EXPIRED') {
    creds.usable = false;
    return fail(
      'ticket',
      ExitCode.auth,
      `${gssError.message} (cache ${cache}; klist is not on PATH)`,
      gssError.hint ?? kinitFix(creds.principal),
    );
  }
  return warn('ticket', `klist is not on PATH, so the cache ${cache} cannot be listed`, KLIST_MISSING_FIX);
}

export interface ServiceTarget {
  /** GSS host-based name, e.g. HTTP@s3g.example.com. */
  service: string;
  host: string;
  /** The realm the host maps to, and how. */
  realm: string | undefined;
  realmVia: string;
  /** `HTTP/host@REALM` as the KDC will be asked for it. */
  principal: string;
  /** The realm part of --spn, which getsecret pins for the host (auth/spnego.ts pinServiceRealm). */
  spnRealm?: string | undefined;
  /** Whether [domain_realm] maps the host (else: referral, then fallback realms). */
  mapped: boolean;
}

export function describeServiceTarget(
  service: string,
  pinned: Sourced<string> | undefined,
  config: Krb5Config | undefined,
  clientRealm: string | undefined,
): ServiceTarget {
  const at = service.lastIndexOf('@');
  const svc = service.slice(0, at);
  const host = service.slice(at + 1);
  const spnRealm = pinned?.value;
  const mapped = spnRealm ? { realm: spnRealm, entry: host } : config ? hostRealm(config, host) : undefined;
  const defaultRealm = config?.get('libdefaults', 'default_realm');
  const realm = mapped?.realm ?? clientRealm ?? defaultRealm;
  // MIT's fallback for unmapped hosts (hostrealm "domain" module): the parent domain, upper-cased;
  // for a name without a dot, the default realm.
  const dot = host.indexOf('.');
  const fallback = isIP(host) === 0 && dot > 0 ? host.slice(dot + 1).toUpperCase() : defaultRealm;
  const realmVia = pinned
    ? `pinned by ${pinned.from}`
    : mapped
      ? `[domain_realm] ${mapped.entry} = ${mapped.realm}`
      : `no [domain_realm] entry: referral from ${clientRealm ?? 'your realm'}${fallback ? `, then realm ${fallback}` : ''}`;
  return {
    service,
    host,
    realm,
    realmVia,
    principal: `${svc}/${host}@${realm ?? ''}`,
    spnRealm,
    mapped: mapped !== undefined,
  };
}

/** Check 2: which krb5.conf, its default realm, and the endpoint host's realm against the ticket's. */
export function checkKrb5Config(
  config: Krb5Config | undefined,
  target: ServiceTarget | undefined,
  creds: Credentials,
  crossRealmFailure: string | undefined,
): CheckResult {
  const name = 'krb5.conf';
  if (!config) return skip(name, 'not read');
  const which = config.read.length > 0 ? config.read.join(', ') : config.files.join(':');
  const from = config.source === 'KRB5_CONFIG' ? ' (KRB5_CONFIG)' : '';
  const defaultRealm = config.get('libdefaults', 'default_realm');
  const parts = [`${which}${from}`, defaultRealm ? `default realm ${defaultRealm}` : 'no default_realm'];
  const file = config.read[0] ?? config.files[0] ?? '/etc/krb5.conf';
  if (config.read.length === 0) {
    const reasons = config.unreadable.map((u) => `${u.file}: ${u.code}`).join(', ');
    return warn(
      name,
      `no krb5.conf could be read (${reasons}); Kerberos falls back to built-in defaults and DNS`,
      `point KRB5_CONFIG at your realm's krb5.conf, or install one at /etc/krb5.conf`,
    );
  }
  if (!target)
    return defaultRealm
      ? ok(name, parts.join('; '))
      : warn(name, parts.join('; '), `set default_realm in [libdefaults] of ${file}`);
  parts.push(`${target.host} → ${target.realm ?? '?'} (${target.realmVia})`);
  const clientRealm = realmOf(creds.principal);
  // --spn HTTP/host@REALM overrides [domain_realm] for this run, as it does for getsecret.
  const mapped = target.spnRealm ? { realm: target.spnRealm, entry: target.host } : hostRealm(config, target.host);
  const mapFix = (realm: string) =>
    target.spnRealm
      ? `use --spn HTTP/${target.host}@${realm} (the realm of your ticket), or get a ticket in ${target.spnRealm}`
      : `add "${target.host} = ${realm}" under [domain_realm] in ${file}, or use an endpoint host name that maps to ${realm}`;
  // Realm names are case-sensitive: `ad.example.com` is not AD.EXAMPLE.COM, and MIT finds no KDC for it.
  const known = [clientRealm, defaultRealm, ...config.realms].filter((r): r is string => Boolean(r));
  const caseTwin = mapped && known.find((r) => r !== mapped.realm && r.toUpperCase() === mapped.realm.toUpperCase());
  if (mapped && caseTwin) {
    return fail(
      name,
      ExitCode.auth,
      `${parts.join('; ')}: realm names are case-sensitive, and ${mapped.realm} is not ${caseTwin}`,
      target.spnRealm
        ? `write the realm as ${caseTwin} in --spn`
        : `write "${mapped.entry} = ${caseTwin}" under [domain_realm] in ${file} (realms are upper case by convention, always in AD)`,
    );
  }
  if (mapped && clientRealm && mapped.realm !== clientRealm) {
    const text = `${parts.join('; ')}; your ticket is for ${clientRealm}`;
    if (crossRealmFailure) return fail(name, ExitCode.auth, `${text}, and ${crossRealmFailure}`, mapFix(clientRealm));
    if (creds.usable) return ok(name, `${text} (cross-realm trust)`);
    return warn(name, `${text}: this needs a cross-realm trust ${clientRealm} → ${mapped.realm}`, mapFix(clientRealm));
  }
  if (!mapped && crossRealmFailure) {
    return fail(
      name,
      ExitCode.auth,
      `${parts.join('; ')}; without an entry MIT Kerberos also tries a realm named after the host's domain, and ${crossRealmFailure}`,
      mapFix(clientRealm ?? defaultRealm ?? 'YOUR.REALM'),
    );
  }
  if (!defaultRealm && !mapped)
    return warn(
      name,
      parts.join('; '),
      `set default_realm in [libdefaults] of ${file}, or ${mapFix(clientRealm ?? 'YOUR.REALM')}`,
    );
  return ok(name, parts.join('; '));
}

export interface ServicePrincipalOutcome {
  result: CheckResult;
  negotiation?: Negotiation | undefined;
  /** The error GSS reported, for the ticket line when klist is missing. */
  gssError?: Ozs3Error | undefined;
  /** "the KDC of A has no cross-realm key for B" when the realm mapping is the cause. */
  crossRealmFailure?: string | undefined;
}

/**
 * For a host without a [domain_realm] entry, the realm the KDC actually answered for (by referral)
 * shows only in the cache: the service ticket GSS just stored there.
 */
export async function confirmServicePrincipal(
  target: ServiceTarget,
  ctx: CredentialContext,
): Promise<string | undefined> {
  const listed = await runTool('klist', [], ctx.env, ctx.timeoutMs);
  if (!listed.found || listed.code !== 0) return undefined;
  const prefix = `${target.service.slice(0, target.service.lastIndexOf('@'))}/${target.host}@`.toLowerCase();
  // MIT also caches a referral ticket under the realm-less name it asked for (`HTTP/host@`): skip it.
  return parseKlist(listed.stdout).tickets.find(
    (t) => t.server.toLowerCase().startsWith(prefix) && !t.server.endsWith('@'),
  )?.server;
}

function rawGssReason(error: Ozs3Error): string {
  const cause = error.cause instanceof Error ? error.cause.message : error.message;
  const minor = /Minor code may provide more information:?\s*(.*)$/s.exec(cause);
  return sanitizeText((minor?.[1] ?? cause).trim() || cause, 500);
}

/**
 * Check 3: ask the KDC for the exact service principal, the way getsecret does — a GSS/SPNEGO
 * security context for the host-based name. Its first token is kept for the gateway login check.
 */
export async function checkServicePrincipal(
  target: ServiceTarget,
  creds: Credentials,
  negotiate: () => Promise<Negotiation>,
  endpointHost: string,
  suggestHost: () => Promise<string | undefined>,
): Promise<ServicePrincipalOutcome> {
  const name = 'service principal';
  try {
    const negotiation = await negotiate();
    return {
      result: ok(
        name,
        `${target.principal}: the KDC issued a service ticket${creds.principal ? ` to ${creds.principal}` : ''}`,
      ),
      negotiation,
    };
  } catch (error) {
    if (!(error instanceof Ozs3Error)) throw error;
    const reason = rawGssReason(error);
    const server = /Server (\S+) not found in Kerberos database/i.exec(reason)?.[1];
    if (error.code === 'KRB_UNKNOWN_SERVER' || server) {
      const crossRealm = server && /^krbtgt\/([^@]+)@(.+)$/.exec(server);
      if (crossRealm) {
        const failure = `the KDC of ${crossRealm[2]} has no cross-realm key for ${crossRealm[1]} (${server} not found)`;
        // Unmapped hosts: the referral to the client realm failed first, then the domain-named realm.
        const asked = target.mapped ? target.principal : `${target.principal} and HTTP/${target.host}@${crossRealm[1]}`;
        return {
          result: fail(
            name,
            ExitCode.auth,
            `${asked}: not found: ${failure}`,
            'see krb5.conf above: map the host to the realm of the gateway',
          ),
          gssError: error,
          crossRealmFailure: failure,
        };
      }
      const principal = server ?? target.principal;
      let fix = `use the gateway's host name as in its principal (ozone.s3g.http.auth.kerberos.principal, HTTP/_HOST@REALM) in --endpoint, or name it with --spn HTTP@<host>`;
      if (isIP(endpointHost.replace(/^\[|\]$/g, '')) !== 0) {
        const suggestion = await suggestHost();
        fix = `service principals name hosts, not IP addresses: use the gateway's host name in --endpoint${suggestion ? ` (${endpointHost} is ${suggestion}: --endpoint …//${suggestion}:<port>)` : ''}, or --spn HTTP@<host>`;
      }
      return {
        result: fail(
          name,
          ExitCode.auth,
          `the KDC does not know ${principal} (Server not found in Kerberos database)`,
          fix,
        ),
        gssError: error,
      };
    }
    // No ticket, expired, KDC unreachable, clock skew …: spnego.ts's mapping already names cause and fix.
    return { result: fail(name, ExitCode.auth, `${target.principal}: ${error.message}`, error.hint), gssError: error };
  }
}
