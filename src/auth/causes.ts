/**
 * Kerberos causes, worded once: what a GSSAPI failure means and what to do about it. The commands
 * (both transports) and `ozs3 doctor` use these, so a cause reads the same everywhere.
 */
import { AuthError } from '../errors.js';

/** The useful part of a GSS error: the minor status text, without the major status boilerplate. */
export function gssReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // "Unspecified GSS failure.  Minor code may provide more information: <the useful part>"
  const minor = /Minor code may provide more information:?\s*(.*)$/s.exec(message);
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
  if (
    /Cannot (contact|find) any KDC|Cannot find KDC|unable to reach any KDC|Cannot resolve network address for KDC/i.test(
      reason,
    )
  ) {
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
    return new AuthError('KRB_NO_TICKET', `no Kerberos ticket (${reason})`, {
      ...cause,
      hint: 'run kinit first, or log in with --keytab FILE --principal NAME',
    });
  }
  if (/Cannot find realm|Cannot determine realm|default realm/i.test(reason)) {
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
