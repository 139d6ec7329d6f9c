/** The connection plan: one pure step from flags, env, preset and ozone-site.xml to what a run uses. */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseHadoopConfig } from '../../src/plan/config-files.js';
import { restFromOzoneSite } from '../../src/plan/ozone-site.js';
import { buildPlan, describePlan, normalizeEndpoint, type ConnectionFlags } from '../../src/plan/plan.js';
import { decideProxy } from '../../src/plan/proxy.js';
import { loadPlan } from '../../src/plan/load.js';

function site(props: Record<string, string>): string {
  return `<?xml version="1.0"?>\n<configuration>\n${Object.entries(props)
    .map(([k, v]) => `  <property>\n    <name>${k}</name>\n    <value>${v}</value>\n  </property>`)
    .join('\n')}\n</configuration>\n`;
}

function planOf(flags: ConnectionFlags, env: NodeJS.ProcessEnv = {}, props?: Record<string, string>) {
  return buildPlan({
    flags,
    env,
    cwd: '/work',
    defaultTimeoutSeconds: 30,
    site: props ? { path: '/conf/ozone-site.xml', props: parseHadoopConfig(site(props)) } : undefined,
  });
}

describe('ozone-site.xml discovery of the REST endpoint', () => {
  it.each([
    [
      { 'ozone.s3g.webadmin.https-address': 's3g.ex.com:19879', 'ozone.s3g.webadmin.http-address': 's3g.ex.com:19878' },
      'https://s3g.ex.com:19879',
    ],
    [{ 'ozone.s3g.webadmin.http-address': 's3g.ex.com:19878' }, 'http://s3g.ex.com:19878'],
    [
      { 'ozone.s3g.https-address': 's3g.ex.com:9879', 'ozone.s3g.http-address': 's3g.ex.com:9878' },
      'https://s3g.ex.com:9879',
    ],
    [{ 'ozone.s3g.http-address': 's3g.ex.com:9878' }, 'http://s3g.ex.com:9878'],
    [
      { 'ozone.s3g.webadmin.https-address': '0.0.0.0:19879', 'ozone.s3g.http-address': 's3g.ex.com:9878' },
      'http://s3g.ex.com:9878',
    ],
    [{ 'ozone.s3g.webadmin.https-address': '0.0.0.0:19879' }, undefined],
  ])('%j → %s', (props, endpoint) => {
    expect(restFromOzoneSite(parseHadoopConfig(site(props))).endpoint).toBe(endpoint);
  });

  it('names the S3 data address for endpoint_url', () => {
    const plan = planOf({}, {}, { 'ozone.s3g.webadmin.https-address': 'g:19879', 'ozone.s3g.https-address': 'g:9879' });
    expect(plan.s3Endpoint).toMatchObject({ value: 'https://g:9879' });
    expect(plan.transport.from).toBe('ozone.s3g.webadmin.https-address in /conf/ozone-site.xml');
  });
});

describe('which transport', () => {
  it('REST for --endpoint or OZS3_ENDPOINT, OM for --om / --om-service-id', () => {
    expect(planOf({ endpoint: 'https://g:19879' }).target.transport).toBe('rest');
    expect(planOf({}, { OZS3_ENDPOINT: 'https://g:19879' }).transport).toMatchObject({
      value: 'rest',
      from: 'OZS3_ENDPOINT',
    });
    const om = planOf({ om: 'om1.ex.com' });
    expect(om.target).toMatchObject({ transport: 'om', nodes: { value: [{ host: 'om1.ex.com', port: 9862 }] } });
  });

  it('with ozone-site.xml alone: the OM when it names one (as ozone s3 does), else the gateway', () => {
    const both = { 'ozone.om.address': 'om.ex.com:9999', 'ozone.s3g.webadmin.https-address': 'g:19879' };
    expect(planOf({}, {}, both).target).toMatchObject({
      transport: 'om',
      nodes: { value: [{ host: 'om.ex.com', port: 9999 }] },
    });
    expect(planOf({ endpoint: 'https://x:1' }, {}, both).target.transport).toBe('rest');
  });

  it('reads an HA service: its nodes, and the OM principal', () => {
    const props = {
      'ozone.om.service.ids': 'prod',
      'ozone.om.nodes.prod': 'om1,om2',
      'ozone.om.address.prod.om1': 'h1:9862',
      'ozone.om.address.prod.om2': 'h2',
      'ozone.om.kerberos.principal': 'om/_HOST@EX.COM',
      'hadoop.rpc.protection': 'privacy',
    };
    const plan = planOf({ omServiceId: 'prod' }, {}, props);
    expect(plan.target).toMatchObject({
      transport: 'om',
      serviceId: { value: 'prod' },
      nodes: {
        value: [
          { nodeId: 'om1', host: 'h1', port: 9862 },
          { nodeId: 'om2', host: 'h2', port: 9862 },
        ],
      },
      principal: { value: 'om/_HOST@EX.COM', from: 'ozone.om.kerberos.principal in /conf/ozone-site.xml' },
      protection: { value: 'privacy' },
    });
    expect(() => planOf({ omServiceId: 'nope' }, {}, props)).toThrow(/not in ozone.om.service.ids/);
    const two = { ...props, 'ozone.om.service.ids': 'prod,dev' };
    expect(() => planOf({}, {}, two)).toThrow(/several OM services/);
  });

  it('lets --om beat OZS3_ENDPOINT (a flag over the environment)', () => {
    expect(planOf({ om: 'om1' }, { OZS3_ENDPOINT: 'https://g:1' }).target.transport).toBe('om');
  });

  it('takes the S3 address and the retry wait from the ozone-site.xml that named the OM', () => {
    const plan = planOf(
      {},
      {},
      {
        'ozone.om.address': 'om1:9862',
        'ozone.s3g.https-address': 's3g:9879',
        'ozone.client.wait.between.retries.millis': '250',
      },
    );
    expect(plan.s3Endpoint?.value).toBe('https://s3g:9879');
    expect(plan.target).toMatchObject({ waitBetweenRetriesMs: { value: 250 } });
    expect(planOf({ om: 'om2' }, {}, { 'ozone.s3g.https-address': 's3g:9879' }).s3Endpoint).toBeUndefined();
  });

  it('refuses two ways at once, and says what is missing when there is none', () => {
    expect(() => planOf({ endpoint: 'https://g:1', om: 'om' })).toThrow(/give one/);
    expect(() => planOf({})).toThrow(/no endpoint/);
  });
});

describe('the endpoint URL', () => {
  it('says to add a scheme when there is none', () => {
    expect(() => normalizeEndpoint('localhost:36389')).toThrow(/needs a scheme/);
    try {
      normalizeEndpoint('localhost:36389');
    } catch (error) {
      expect((error as { hint: string }).hint).toContain('https://localhost:36389');
    }
  });

  it('appends /secret once', () => {
    expect(normalizeEndpoint('https://g:1').href).toBe('https://g:1/secret');
    expect(normalizeEndpoint('https://g:1/secret/').href).toBe('https://g:1/secret');
  });
});

describe('the proxy decision (undici’s rules, decided once)', () => {
  it.each([
    [{ HTTPS_PROXY: 'http://p:3128' }, 'https://g:1', 'p:3128'],
    [{ HTTP_PROXY: 'http://p:3128' }, 'https://g:1', 'p:3128'],
    [{ HTTP_PROXY: 'http://p:3128' }, 'http://g:1', 'p:3128'],
    [{ HTTPS_PROXY: 'http://p:3128' }, 'http://g:1', undefined],
    [{ HTTP_PROXY: 'http://p:3128', NO_PROXY: 'g' }, 'https://g:1', undefined],
    [{ HTTP_PROXY: 'http://p:3128', NO_PROXY: '.ex.com' }, 'https://g.ex.com:1', undefined],
    [{ HTTP_PROXY: 'http://p:3128', NO_PROXY: 'g:2' }, 'https://g:1', 'p:3128'],
    [{ HTTP_PROXY: 'http://p:3128', NO_PROXY: '*' }, 'https://g:1', undefined],
    [{ http_proxy: 'http://lower:1', HTTP_PROXY: 'http://upper:1' }, 'http://g:1', 'lower:1'],
    [{ HTTP_PROXY: 'http://user:pw@p:3128' }, 'https://g:1', 'p:3128'],
  ])('%j for %s → %s', (env, url, shown) => {
    expect(decideProxy(new URL(url), env).shown).toBe(shown);
  });
});

describe('loadPlan with presets', () => {
  const home = mkdtempSync(join(tmpdir(), 'ozs3-plan-'));
  mkdirSync(join(home, '.config', 'ozs3'), { recursive: true });
  writeFileSync(
    join(home, '.config', 'ozs3', 'config'),
    '; presets\n[cluster prod]\nendpoint = https://prod:19879\ns3_endpoint = https://prod:9879\nregion = eu-1\nspn = HTTP/prod@EX.COM\ncacert = ca.pem\n\n[cluster "dev"]\nendpoint = http://dev:19878\n\n[cluster om]\nom = om.ex.com:9862\n',
  );
  const deps = (env: NodeJS.ProcessEnv = {}) => ({ env, homedir: home, cwd: '/work' });

  it('takes a --cluster preset, each value naming the preset as its source', async () => {
    const plan = await loadPlan({ cluster: 'prod' }, deps());
    expect(plan.target).toMatchObject({
      endpoint: { from: expect.stringContaining('[cluster prod]') },
      service: { value: 'HTTP@prod', from: expect.stringContaining('spn in [cluster prod]') },
      realm: { value: 'EX.COM' },
      tls: { cacert: { value: '/work/ca.pem', from: expect.stringContaining('cacert in [cluster prod]') } },
    });
    expect(plan).toMatchObject({ region: { value: 'eu-1' }, s3Endpoint: { value: 'https://prod:9879' } });
    expect((await loadPlan({}, deps({ OZS3_CLUSTER: 'dev' }))).target).toMatchObject({
      endpoint: { value: new URL('http://dev:19878/secret') },
    });
    expect((await loadPlan({ cluster: 'om' }, deps())).target.transport).toBe('om');
    const rows = describePlan(plan);
    expect(rows.find((r) => r.name === 'service principal')?.from).toContain('[cluster prod]');
  });

  it('lets --endpoint and OZS3_ENDPOINT override the preset', async () => {
    const flag = await loadPlan({ cluster: 'prod', endpoint: 'https://flag:1' }, deps());
    expect(flag.target).toMatchObject({ endpoint: { value: new URL('https://flag:1/secret'), from: '--endpoint' } });
    const env = await loadPlan({ cluster: 'prod' }, deps({ OZS3_ENDPOINT: 'https://env:1' }));
    expect(env.transport.from).toBe('OZS3_ENDPOINT');
  });

  it('refuses an unknown cluster naming the known ones, and reads XDG_CONFIG_HOME', async () => {
    await expect(loadPlan({ cluster: 'nope' }, deps())).rejects.toMatchObject({
      exitCode: 2,
      hint: expect.stringContaining('prod'),
    });
    await expect(loadPlan({ cluster: 'prod' }, deps({ XDG_CONFIG_HOME: join(home, 'nowhere') }))).rejects.toMatchObject(
      {
        exitCode: 2,
      },
    );
  });
});

describe('an ozone-site.xml that names nothing says why', () => {
  const base = mkdtempSync(join(tmpdir(), 'ozs3-site-'));
  const dirWith = (name: string, text?: string) => {
    const dir = join(base, name);
    mkdirSync(dir);
    if (text !== undefined) writeFileSync(join(dir, 'ozone-site.xml'), text);
    return dir;
  };
  const deps = (OZONE_CONF_DIR: string) => ({ env: { OZONE_CONF_DIR }, homedir: base, cwd: '/work' });

  it.each([
    ['no such directory', join(base, 'nowhere'), /^no endpoint: OZONE_CONF_DIR=.*nowhere is not a directory$/],
    ['a directory without the file', dirWith('bare'), /^no endpoint: OZONE_CONF_DIR=.*bare has no ozone-site\.xml$/],
    ['an empty file', dirWith('empty', ''), /^no endpoint: .*empty\/ozone-site\.xml is empty$/],
    [
      'not XML at all',
      dirWith('junk', 'endpoint=http://x\n'),
      /^no endpoint: .*junk\/ozone-site\.xml is not a Hadoop configuration file \(no <configuration>\)$/,
    ],
    [
      'a configuration without properties',
      dirWith('noprops', '<configuration>\n</configuration>\n'),
      /has no <property> with a <name> and a <value>$/,
    ],
    [
      'properties, none of them an address',
      dirWith('other', site({ 'ozone.replication': '3' })),
      /names neither an OzoneManager \(ozone\.om\.address, ozone\.om\.service\.ids\) nor an S3 Gateway/,
    ],
  ])('%s', async (_name, dir, message) => {
    await expect(loadPlan({}, deps(dir))).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(message),
      hint: expect.stringMatching(/OZONE_CONF_DIR.*--endpoint URL.*--om HOST\[:PORT\]/),
    });
  });

  it('--om-service-id names the missing file too', async () => {
    await expect(loadPlan({ omServiceId: 'svc' }, deps(dirWith('bare2')))).rejects.toMatchObject({
      message: expect.stringMatching(
        /needs the OM addresses from an ozone-site\.xml: OZONE_CONF_DIR=.*has no ozone-site\.xml/,
      ),
    });
  });

  it('a flag beats the file: --om works beside a broken OZONE_CONF_DIR', async () => {
    const plan = await loadPlan({ om: 'om1:9862' }, deps(join(base, 'nowhere')));
    expect(plan.target.transport).toBe('om');
  });
});

describe('an empty flag is refused, not read as absent', () => {
  it.each([
    [{ endpoint: '' }, '--endpoint is empty: expected URL'],
    [{ om: ' ' }, '--om is empty: expected HOST[:PORT]'],
    [{ omServiceId: '' }, '--om-service-id is empty: expected ID'],
    [{ cluster: '' }, '--cluster is empty: expected NAME'],
    [{ keytab: '', endpoint: 'https://g:1' }, '--keytab is empty: expected FILE'],
  ])('%j', (flags, message) => {
    expect(() => planOf(flags as ConnectionFlags, { OZS3_ENDPOINT: 'https://env:1' })).toThrow(message);
  });
});
