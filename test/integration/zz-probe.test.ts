import { afterAll, beforeAll, it } from 'vitest';
import { startRealm, withEnv, type Realm } from '../support/realm.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import { startOmServer, type OmServer } from '../support/om-server.js';
import { runCli } from '../support/run-cli.js';
let realm: Realm; let om: OmServer; let gw: Gateway; let cc: string;
beforeAll(async () => {
  realm = await startRealm();
  await realm.addPrincipal('alice', { password: 'pw' });
  await realm.addPrincipal('bob', { password: 'pw' });
  cc = await realm.kinit('alice', { password: 'pw', ccache: 'cc' });
  om = await startOmServer(realm, { protection: 'privacy', admins: ['admin'] });
  gw = await startGateway(realm, { adminOnly: false, admins: ['admin'] });
});
afterAll(async () => { await gw?.close(); await om?.close(); await realm?.stop(); });
it('probe', async () => {
  const env = withEnv(realm, { KRB5CCNAME: cc, KRB5_CLIENT_KTNAME: '' });
  const cases: [string[], Record<string, string>][] = [
    [['getsecret', '--endpoint', gw.url, '--principal', 'bob'], {}],
    [['getsecret', '--om', om.nodes[0]!.address, '--principal', 'bob'], {}],
    [['getsecret', '--endpoint', gw.url], { KRB5_CONFIG: '/nonexistent/krb5.conf' }],
    [['getsecret', '--om', om.nodes[0]!.address], { KRB5_CONFIG: '/nonexistent/krb5.conf' }],
    [['getsecret', '--om', om.nodes[0]!.address, '--spn', 'om/other@OZS3.TEST'], {}],
    [['getsecret', '--om', om.nodes[0]!.address, '--spn', 'om@localhost'], {}],
    [['getsecret', '--om', om.nodes[0]!.address], { KRB5CCNAME: 'FILE:/nonexistent' }],
    [['doctor', '--help'], {}],
  ];
  for (const [args, extra] of cases) {
    const r = await runCli(args, { env: { ...env, ...extra } });
    console.log('$ ozs3', args.join(' '), JSON.stringify(extra), '\n', r.code, r.stdout.slice(0, 3000), r.stderr);
  }
});
