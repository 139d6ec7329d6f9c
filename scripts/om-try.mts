// Dev only (not shipped): run the OM transport against a real OM by hand.
//
//   npx tsx scripts/om-try.mts [--om HOST[:PORT][=NODEID] ...] [--principal-pattern om/_HOST@REALM]
//       [--protection privacy] [--as alice@REALM] [--keytab FILE] [--timeout 30] [--probe]
//       get|revoke|set [USER] [SECRET]
//
// The Kerberos environment is the shell's (KRB5CCNAME, KRB5_CONFIG, KRB5_TRACE); with --keytab the
// login goes to a private MEMORY cache, as ozs3 does. Secrets are printed; traces never show them.
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    om: { type: 'string', multiple: true, default: ['localhost:9862'] },
    'principal-pattern': { type: 'string' },
    protection: { type: 'string' },
    as: { type: 'string' },
    keytab: { type: 'string' },
    timeout: { type: 'string', default: '30' },
    probe: { type: 'boolean', default: false },
  },
});

if (values.keytab) {
  // Before GSSAPI loads: MIT reads these at first use.
  process.env.KRB5_CLIENT_KTNAME = values.keytab.includes(':') ? values.keytab : `FILE:${values.keytab}`;
  process.env.KRB5CCNAME = `MEMORY:om-try-${process.pid}`;
}

const nodes = values.om.map((spec) => {
  const [address, nodeId] = spec.split('=');
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(address!);
  if (!m) throw new Error(`bad --om ${spec}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2] ?? 9862), nodeId };
});
const options = {
  target: { nodes, principal: values['principal-pattern'] },
  principal: values.as,
  keytab: values.keytab,
  protection: values.protection,
  timeoutMs: Number(values.timeout) * 1000,
  retries: 2,
  trace: (line: string) => process.stderr.write(`* ${line}\n`),
};

const started = performance.now();
const { createOmSecretService, probeOm } = await import('../src/om/service.js');
process.stderr.write(`* loaded the OM service in ${(performance.now() - started).toFixed(1)} ms\n`);
try {
  if (values.probe) {
    for (const probe of await probeOm(options)) {
      const { error, ...facts } = probe;
      process.stdout.write(
        `${JSON.stringify({ ...facts, error: error && { code: error.code, message: error.message, hint: error.hint } })}\n`,
      );
    }
  } else {
    const [op = 'get', user, secret] = positionals;
    const svc = await createOmSecretService(options);
    try {
      if (op === 'get') process.stdout.write(`${JSON.stringify(await svc.getSecret(user || undefined))}\n`);
      else if (op === 'revoke') await svc.revokeSecret(user || undefined);
      else if (op === 'set')
        process.stdout.write(`${JSON.stringify(await svc.setSecret(user || undefined, secret ?? ''))}\n`);
      else throw new Error(`unknown operation ${op}`);
      process.stderr.write(
        `* done as ${svc.authenticatedPrincipal} in ${(performance.now() - started).toFixed(1)} ms\n`,
      );
    } finally {
      await svc.close();
    }
  }
} catch (error) {
  const e = error as { code?: string; exitCode?: number; message: string; hint?: string };
  process.stderr.write(`om-try: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ''} (${e.code}, exit ${e.exitCode})\n`);
  process.exitCode = e.exitCode ?? 1;
}
