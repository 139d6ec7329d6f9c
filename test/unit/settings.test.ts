import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { discoverFromOzoneSite, parseHadoopConfig, resolveSettings } from '../../src/config/settings.js';

function site(props: Record<string, string>): string {
  return `<?xml version="1.0"?>\n<configuration>\n${Object.entries(props)
    .map(([k, v]) => `  <property>\n    <name>${k}</name>\n    <value>${v}</value>\n  </property>`)
    .join('\n')}\n</configuration>\n`;
}

describe('ozone-site.xml discovery', () => {
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
    expect(discoverFromOzoneSite(parseHadoopConfig(site(props))).endpoint).toBe(endpoint);
  });

  it('names the S3 data address for endpoint_url', () => {
    const found = discoverFromOzoneSite(
      parseHadoopConfig(site({ 'ozone.s3g.webadmin.https-address': 'g:19879', 'ozone.s3g.https-address': 'g:9879' })),
    );
    expect(found).toMatchObject({ endpoint: 'https://g:19879', s3Endpoint: 'https://g:9879' });
  });
});

describe('resolveSettings', () => {
  const home = mkdtempSync(join(tmpdir(), 'ozs3-settings-'));
  mkdirSync(join(home, '.config', 'ozs3'), { recursive: true });
  writeFileSync(
    join(home, '.config', 'ozs3', 'config'),
    '; presets\n[cluster prod]\nendpoint = https://prod:19879\ns3_endpoint = https://prod:9879\nregion = eu-1\nspn = HTTP/prod@EX.COM\n\n[cluster "dev"]\nendpoint = http://dev:19878\n',
  );
  const conf = mkdtempSync(join(tmpdir(), 'ozs3-conf-'));
  writeFileSync(
    join(conf, 'ozone-site.xml'),
    site({ 'ozone.s3g.webadmin.https-address': 'site:19879', 'ozone.s3g.https-address': 'site:9879' }),
  );

  it('takes a --cluster preset', async () => {
    expect(await resolveSettings({ cluster: 'prod' }, { env: {}, homedir: home })).toMatchObject({
      endpoint: 'https://prod:19879',
      s3Endpoint: 'https://prod:9879',
      region: 'eu-1',
      spn: 'HTTP/prod@EX.COM',
    });
    expect((await resolveSettings({}, { env: { OZS3_CLUSTER: 'dev' }, homedir: home })).endpoint).toBe(
      'http://dev:19878',
    );
  });

  it('lets --endpoint and OZS3_ENDPOINT override the preset', async () => {
    expect(
      (await resolveSettings({ cluster: 'prod', endpoint: 'https://flag:1' }, { env: {}, homedir: home })).endpoint,
    ).toBe('https://flag:1');
    expect(
      (await resolveSettings({ cluster: 'prod' }, { env: { OZS3_ENDPOINT: 'https://env:1' }, homedir: home })).endpoint,
    ).toBe('https://env:1');
  });

  it('falls back to ozone-site.xml in OZONE_CONF_DIR', async () => {
    const s = await resolveSettings({}, { env: { OZONE_CONF_DIR: conf }, homedir: home });
    expect(s).toMatchObject({ endpoint: 'https://site:19879', s3Endpoint: 'https://site:9879' });
    expect(s.endpointSource).toContain('ozone.s3g.webadmin.https-address');
  });

  it('refuses an unknown cluster naming the known ones', async () => {
    await expect(resolveSettings({ cluster: 'nope' }, { env: {}, homedir: home })).rejects.toMatchObject({
      exitCode: 2,
      hint: expect.stringContaining('prod'),
    });
  });

  it('reads XDG_CONFIG_HOME', async () => {
    await expect(
      resolveSettings({ cluster: 'prod' }, { env: { XDG_CONFIG_HOME: join(home, 'nowhere') }, homedir: home }),
    ).rejects.toMatchObject({ exitCode: 2 });
  });
});
