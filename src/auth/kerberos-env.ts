/**
 * What a run sets in its own environment before GSSAPI first reads it: the keytab login (a private
 * MEMORY cache filled from the client keytab) and the realm `--spn HTTP/host@REALM` pins.
 */
import { unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';

/**
 * Keytab login without kinit: MIT GSSAPI acquires initial credentials from the client keytab
 * (KRB5_CLIENT_KTNAME) into a private MEMORY cache, so the user's ticket cache is neither read
 * nor written, and nothing lands on disk.
 */
export function prepareKeytabLogin(env: NodeJS.ProcessEnv, keytabName: string): void {
  env.KRB5_CLIENT_KTNAME = keytabName;
  // MEMORY caches live inside this process, so the pid alone keeps the name apart.
  env.KRB5CCNAME = `MEMORY:ozs3-${process.pid}`;
}

/**
 * Honour the realm of `--spn HTTP/host@REALM`. The addon imports host-based names only, whose realm
 * krb5.conf's [domain_realm] decides; KRB5_CONFIG is a search list in which the first file naming a
 * relation wins, so a one-line mapping put in front of the user's config pins the realm for this
 * process alone. The file holds no secret and is removed at exit.
 */
export function pinServiceRealm(env: NodeJS.ProcessEnv, host: string, realm: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(realm) || !/^[A-Za-z0-9._-]+$/.test(host)) {
    throw new UsageError(`invalid --spn realm or host '${host}@${realm}'`);
  }
  // 'wx': a name someone else planted in the shared temp dir is never written through.
  const file = join(tmpdir(), `ozs3-krb5-${process.pid}-${Date.now().toString(36)}.conf`);
  writeFileSync(file, `[domain_realm]\n  ${host.toLowerCase()} = ${realm}\n`, { mode: 0o600, flag: 'wx' });
  process.once('exit', () => {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  });
  env.KRB5_CONFIG = `${file}:${env.KRB5_CONFIG || '/etc/krb5.conf'}`;
  return file;
}
