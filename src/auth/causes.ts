/**
 * Kerberos causes, worded once: what a GSSAPI failure means and what to do about it. The commands
 * (both transports) and `ozs3 doctor` use these, so a cause reads the same everywhere.
 */
import { existsSync } from 'node:fs';
import { AuthError } from '../errors.js';
import type { KrbError } from './krb-error.js';

/** The useful part of a GSS error: the minor status text, without the major status boilerplate. */
export function gssReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // "Unspecified GSS failure.  Minor code may provide more information: <the useful part>"; the
  // major text itself may end in that phrase, so the useful part follows its last occurrence.
  const minor = /^.*Minor code may provide more information:?\s*(.*)$/s.exec(message);
  const reason = (minor?.[1] ?? message).replace(/\s+/g, ' ').trim();
  return reason === '' ? message.trim() : reason;
}

/** Turn a GSSAPI failure into a message that names the cause and the fix. */
export function mapGssError(
  error: unknown,
  opts: { service: string; keytab?: string | undefined; principal?: string | undefined },
): AuthError {
  const reason = gssReason(error);
  const principalOf = (service: string) => service.replace('@', '/');
  const cause = { cause: error };
  if (/Server .*not found in Kerberos database|Server not found/i.test(reason)) {
    return new AuthError(
      'KRB_UNKNOWN_SERVER',
      `the KDC does not know the service principal ${principalOf(opts.service)} (${reason})`,
      {
        ...cause,
        hint: "use the gateway's canonical host name in --endpoint, or name the principal with --spn HTTP/<host>@<REALM>",
      },
    );
  }
  if (/expired/i.test(reason)) {
    return new AuthError('KRB_TICKET_EXPIRED', `your Kerberos ticket has expired (${reason})`, {
      ...cause,
      hint: opts.keytab
        ? 'check the keytab and the KDC'
        : 'run kinit to renew it, or log in with --keytab FILE --principal NAME',
    });
  }
  if (/Clock skew/i.test(reason)) {
    return new AuthError('KRB_CLOCK_SKEW', `the clock here and the KDC's differ too much (${reason})`, {
      ...cause,
      hint: 'synchronise the clock (NTP / chrony)',
    });
  }
  const lowerRealm = /Cannot find KDC for realm "([^"]*[a-z][^"]*)"/.exec(reason)?.[1];
  if (lowerRealm) {
    return new AuthError(
      'KRB_REALM_CASE',
      `no KDC for realm "${lowerRealm}" (${reason}): realm names are case-sensitive, and this one is not upper case`,
      {
        ...cause,
        hint: `if you meant ${lowerRealm.toUpperCase()}, write it so in krb5.conf's [domain_realm] (KRB5_CONFIG); ozs3 doctor shows the mapping`,
      },
    );
  }
  if (
    /Cannot (contact|find) any KDC|Cannot find KDC|unable to reach any KDC|Cannot resolve network address for KDC/i.test(
      reason,
    )
  ) {
    const missing = missingKrb5Conf();
    if (missing) return missing(reason, error);
    return new AuthError('KRB_KDC_UNREACHABLE', `cannot reach a Kerberos KDC (${reason})`, {
      ...cause,
      hint: 'check the [realms] section of krb5.conf (KRB5_CONFIG) and that the KDC is reachable',
    });
  }
  if (
    opts.keytab &&
    /keytab|Key table|no suitable keys|not found in Kerberos database|Client .* not found|Preauthentication failed|Password incorrect|No credentials were supplied|cannot find mechanisms/i.test(
      reason,
    )
  ) {
    return new AuthError(
      'KRB_KEYTAB_LOGIN_FAILED',
      `cannot log in from keytab ${opts.keytab}${opts.principal ? ` as ${opts.principal}` : ''} (${reason})`,
      {
        ...cause,
        hint: 'check with: klist -kt <keytab>; the principal must be in the keytab and its key version current',
      },
    );
  }
  if (
    /No Kerberos credentials|No credentials cache|credentials cache .*not found|No credentials were supplied|Can't find client principal|not found in credential cache/i.test(
      reason,
    )
  ) {
    if (opts.principal) {
      // --principal with the ticket cache: the cache holds someone else (or no one).
      return new AuthError('KRB_NO_TICKET', `no Kerberos ticket for ${opts.principal} (--principal) (${reason})`, {
        ...cause,
        hint: `kinit ${opts.principal} (klist shows whose tickets the cache holds), or leave out --principal`,
      });
    }
    return new AuthError('KRB_NO_TICKET', `no Kerberos ticket (${reason})`, {
      ...cause,
      hint: 'run kinit first, or log in with --keytab FILE --principal NAME',
    });
  }
  if (/Cannot find realm|Cannot determine realm|default realm/i.test(reason)) {
    const missing = missingKrb5Conf();
    if (missing) return missing(reason, error);
    return new AuthError('KRB_REALM', `cannot tell which Kerberos realm to use (${reason})`, {
      ...cause,
      hint: 'set default_realm and [domain_realm] in krb5.conf (KRB5_CONFIG), or use --spn HTTP/<host>@<REALM>',
    });
  }
  return new AuthError('KRB_GSS_FAILURE', `Kerberos failed: ${reason}`, {
    ...cause,
    hint: 'run with --verbose and KRB5_TRACE=/dev/stderr for details',
  });
}

/**
 * When no krb5.conf the Kerberos library would read exists (KRB5_CONFIG naming missing files, or no
 * /etc/krb5.conf), the KDC and realm failures that follow are about that, not the network.
 * Reads the process environment: it is what the library itself reads.
 */
function missingKrb5Conf(): ((reason: string, error: unknown) => AuthError) | undefined {
  const configured = process.env.KRB5_CONFIG;
  const files = (configured || '/etc/krb5.conf').split(':').filter(Boolean);
  if (files.length === 0 || files.some((file) => existsSync(file))) return undefined;
  const what = configured ? `KRB5_CONFIG names ${files.join(':')}, which does not exist` : 'there is no /etc/krb5.conf';
  return (reason, error) =>
    new AuthError('KRB_NO_CONFIG', `no Kerberos configuration: ${what} (${reason})`, {
      cause: error,
      hint: configured
        ? "point KRB5_CONFIG at your cluster's krb5.conf, or unset it to use /etc/krb5.conf"
        : "install your cluster's krb5.conf as /etc/krb5.conf, or point KRB5_CONFIG at it",
    });
}

/** Why a service (the gateway, the OM) would not accept a Kerberos token, and what fixes it. */
export interface AcceptorCause {
  code: string;
  message: string;
  hint: string;
}

export interface AcceptorFailure {
  /** What the acceptor said: a JDK GSSException / SaslException text, a reason phrase, a body. */
  text?: string | undefined;
  /** A KRB-ERROR it sent back (MIT acceptors put one in the 401's Negotiate token). */
  krbError?: KrbError | undefined;
  /** Who refused: 'the gateway' or 'the OM'. */
  who: string;
  /** The service principal the ticket was for, e.g. HTTP/s3g.example.com@EXAMPLE.COM. */
  principal: string;
  /** This machine's time when the answer came (for a skew's size). */
  now?: Date | undefined;
}

function minutesApart(a: Date, b: Date): string {
  const minutes = Math.round((a.getTime() - b.getTime()) / 60_000);
  if (minutes === 0) return 'less than a minute apart';
  return `${Math.abs(minutes)} min ${minutes > 0 ? 'ahead of' : 'behind'} this machine`;
}

/** The fix for an RC4 ticket a JDK 17+ acceptor refuses: AES on the AD account, then a fresh ticket. */
export function rc4Fix(principal: string): string {
  return `an AD admin must allow AES on the account of ${principal} (msDS-SupportedEncryptionTypes, e.g. 24) and export its keytab again; then get a fresh ticket: kdestroy; kinit (a cached RC4 ticket stays until then)`;
}

/**
 * For a refusal of a caller whose name has capitals: AD takes any case at kinit, and the ticket then
 * carries the name as typed, which Ozone compares exactly (`Alice@R` is not the admin `alice@R`).
 */
export function withNameCase(hint: string, principal: string | undefined): string {
  if (!principal) return hint;
  const at = principal.lastIndexOf('@');
  const primary = at >= 0 ? principal.slice(0, at) : principal;
  if (!/[A-Z]/.test(primary)) return hint;
  return `${hint}; you are ${principal}, and Ozone compares names exactly (AD takes any case at kinit): if the KDC keeps it in lower case, kinit -C ${principal}`;
}

/**
 * The cause behind an acceptor's refusal, when its words (or its KRB-ERROR code) name one: an
 * encryption type it will not take (RC4 on JDK 17+), clock skew, a key it does not have, a
 * principal it does not hold, a replay, a name it cannot map to a user. Undefined otherwise.
 */
export function explainAcceptorFailure(failure: AcceptorFailure): AcceptorCause | undefined {
  const { who, principal, krbError } = failure;
  const text = failure.text ?? '';
  const said = krbError ? `${krbError.name}${krbError.text ? `: ${krbError.text}` : ''}` : text.trim().split('\n')[0]!;
  if (
    /RC4 with HMAC is not supported|arcfour.*not (supported|enabled)|rc4-hmac.*disabled/i.test(text) ||
    krbError?.code === 14
  ) {
    return {
      code: 'KRB_RC4_REFUSED',
      message: `${who} refuses the encryption type of your ticket for ${principal}: RC4, which JDK 17 and later turn off (${said})`,
      hint: rc4Fix(principal),
    };
  }
  if (/Clock skew/i.test(text) || krbError?.code === 37) {
    const apart =
      krbError?.serverTime && failure.now
        ? `: ${who}'s clock is ${minutesApart(krbError.serverTime, failure.now)}`
        : '';
    return {
      code: 'KRB_CLOCK_SKEW',
      message: `${who} and this machine disagree on the time by more than Kerberos allows (5 min)${apart} (${said})`,
      hint: `synchronise the clocks of ${who} and this machine (NTP / chrony)`,
    };
  }
  if (/NoMatchingRule|No rules applied to|Malformed Kerberos name/i.test(text)) {
    return {
      code: 'KRB_NAME_UNMAPPED',
      message: `${who} cannot map your principal to a user (${said}): an enterprise name (user\\@domain@REALM) or a name from another realm`,
      hint: 'get a ticket in your canonical name: kinit -C (with an enterprise UPN: kinit -C -E user@upn.suffix); klist shows the name',
    };
  }
  if (
    /Specified version of key is not available|key version|Checksum failed|Integrity check on decrypted field failed|Cannot find key of appropriate type|bad integrity/i.test(
      text,
    ) ||
    krbError?.code === 44 ||
    krbError?.code === 41 ||
    krbError?.code === 31
  ) {
    return {
      code: 'KRB_KEY_MISMATCH',
      message: `${who} does not hold the key the KDC used for ${principal} (${said})`,
      hint: `${who}'s keytab is out of date or for another principal: compare kvno ${principal} (the KDC's key version) with klist -kt on ${who}, and export the keytab again`,
    };
  }
  if (
    krbError?.code === 7 ||
    krbError?.code === 35 ||
    krbError?.code === 45 ||
    /not found in keytab|No key table entry|Server not found|Wrong principal/i.test(text)
  ) {
    return {
      code: 'KRB_WRONG_PRINCIPAL',
      message: `${who} holds no key for ${principal} (${said})`,
      hint: `name the principal ${who} really has with --spn (its ${who === 'the OM' ? 'ozone.om.kerberos.principal' : 'ozone.s3g.http.auth.kerberos.principal'}), or add ${principal} to its keytab`,
    };
  }
  if (/replay/i.test(text) || krbError?.code === 34) {
    return {
      code: 'KRB_REPLAY',
      message: `${who} took your Kerberos token for a replay (${said})`,
      hint: 'try again; if it persists, check that the clocks agree and that nothing between you resends requests',
    };
  }
  return undefined;
}
