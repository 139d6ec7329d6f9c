/**
 * A skewed wall clock for one test server (libfaketime through LD_PRELOAD): the JDK-GSS gateway's
 * JVM or httpd + mod_auth_gssapi see the time `offsetSec` ahead (or behind), so their Kerberos
 * acceptor judges authenticators against that time (and a Date header shows it). Only CLOCK_REALTIME
 * and friends are shifted (FAKETIME_DONT_FAKE_MONOTONIC=1): timers, sleeps and the JVM's nanoTime
 * run normally. Throws, naming the Debian package, when libfaketime is missing.
 *
 * Not for the Node gateway: the `kerberos` addon dlopen()s libgssapi_krb5 with RTLD_DEEPBIND, so
 * MIT krb5 inside it binds time()/gettimeofday() to libc and never sees the preloaded clock (only
 * Node's own Date would move).
 *
 *   spawn(java, args, { env: { ...env, ...clockOffsetEnv(600) } })   // 10 minutes ahead
 */
import { existsSync } from 'node:fs';

export const FAKETIME_DEBIAN_PACKAGE = 'libfaketime';

const LIB_DIRS = [
  '/usr/lib/x86_64-linux-gnu/faketime',
  '/usr/lib/aarch64-linux-gnu/faketime',
  '/usr/lib/faketime',
  '/usr/local/lib/faketime',
];

/** libfaketimeMT (the build for multi-threaded programs: a JVM, httpd, Node). */
export function faketimeLibrary(): string {
  for (const dir of LIB_DIRS) {
    for (const name of ['libfaketimeMT.so.1', 'libfaketime.so.1']) {
      const path = `${dir}/${name}`;
      if (existsSync(path)) return path;
    }
  }
  throw new Error(
    `libfaketime not found (looked in ${LIB_DIRS.join(', ')}): a clock offset needs it. ` +
      `Install the Debian package: apt-get install ${FAKETIME_DEBIAN_PACKAGE}`,
  );
}

/** Env entries that run a program with its wall clock `offsetSec` seconds off (positive: ahead). */
export function clockOffsetEnv(offsetSec: number): Record<string, string> {
  if (!Number.isInteger(offsetSec)) throw new Error(`clock offset must be whole seconds: ${offsetSec}`);
  return {
    LD_PRELOAD: faketimeLibrary(),
    FAKETIME: `${offsetSec < 0 ? '-' : '+'}${Math.abs(offsetSec)}`,
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
  };
}
