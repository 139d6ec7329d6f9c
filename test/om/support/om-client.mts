/**
 * Runs the OM service in a fresh process, because MIT Kerberos reads KRB5CCNAME / KRB5_CLIENT_KTNAME
 * at first use: `node --import tsx om-client.mts '<json>'` with the environment the test chose.
 * Prints one JSON line: {principal, secret} or {error: {code, exitCode, message, hint}}.
 */
import { createOmSecretService } from '../../../src/om/service.js';
import { Ozs3Error } from '../../../src/errors.js';

interface Job {
  host: string;
  port: number;
  principal?: string;
  initiator?: string;
  keytab?: string;
  op: 'get' | 'revoke';
  user?: string;
  timeoutMs?: number;
}

const job = JSON.parse(process.argv[2]!) as Job;
const result: Record<string, unknown> = {};
try {
  const svc = await createOmSecretService({
    target: { nodes: [{ host: job.host, port: job.port }], principal: job.principal },
    principal: job.initiator,
    keytab: job.keytab,
    timeoutMs: job.timeoutMs ?? 10_000,
    retries: 0,
  });
  try {
    if (job.op === 'get') result.secret = await svc.getSecret(job.user);
    else await svc.revokeSecret(job.user);
    result.principal = svc.authenticatedPrincipal;
  } finally {
    await svc.close();
  }
} catch (error) {
  result.error =
    error instanceof Ozs3Error
      ? { code: error.code, exitCode: error.exitCode, message: error.message, hint: error.hint }
      : { code: 'BUG', exitCode: 1, message: String(error) };
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
