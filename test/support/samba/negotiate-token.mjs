#!/usr/bin/env node
/**
 * Prints, as JSON, the SPNEGO (Negotiate) token a client would send for a service, from the ccache in
 * KRB5CCNAME: { "base64": <length of the base64 token, as in `Authorization: Negotiate <token>`>,
 * "bytes": <decoded length> }. Run it as a subprocess with the realm env: the kerberos library
 * reads KRB5_* at first use.
 *
 *   KRB5_CONFIG=… KRB5CCNAME=… node test/support/samba/negotiate-token.mjs HTTP@localhost
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const kerberos = require('kerberos');
const service = process.argv[2] ?? 'HTTP@localhost';

try {
  const client = await kerberos.initializeClient(service, {
    mechOID: kerberos.GSS_MECH_OID_SPNEGO,
    gssFlag: kerberos.GSS_C_MUTUAL_FLAG,
  });
  const token = await client.step('');
  process.stdout.write(`${JSON.stringify({ base64: token.length, bytes: Buffer.from(token, 'base64').length })}\n`);
} catch (e) {
  process.stderr.write(`negotiate-token: ${e?.message ?? e}\n`);
  process.exit(1);
}
