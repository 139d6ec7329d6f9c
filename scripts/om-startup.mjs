// Dev only: what the OM transport costs at start-up. Bundles src/om/service.ts the way
// scripts/build.mjs bundles ozs3 (esbuild, ESM, minified, koffi external), then measures in fresh
// processes: import() of the bundle, koffi + libgssapi load, the first protobuf encode + decode.
//
//   node scripts/om-startup.mjs [runs]
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}/.cache/om-startup`;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { service: `${root}/src/om/service.ts`, measure: `${out}/measure-entry.ts` },
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  external: ['koffi', 'kerberos'],
  logLevel: 'warning',
  banner: { js: "import{createRequire as __r}from'node:module';const require=__r(import.meta.url);" },
  plugins: [
    {
      name: 'measure-entry',
      setup(b) {
        b.onResolve({ filter: /measure-entry\.ts$/ }, (a) => ({ path: a.path, namespace: 'm' }));
        b.onLoad({ filter: /.*/, namespace: 'm' }, () => ({
          resolveDir: `${root}/src/om`,
          loader: 'ts',
          contents: `
            export { callFrame, parseAnswer, parseOmResponse } from './ipc.js';
            export { loadGss } from './gssapi.js';
            export { create, toBinary } from '@bufbuild/protobuf';
            export { OMRequestSchema, OMResponseSchema, Type, Status } from './gen/OmClientProtocol_pb.js';
            export { RpcResponseHeaderProtoSchema } from './gen/RpcHeader_pb.js';
            export { encodeFrame } from './frames.js';`,
        }));
      },
    },
  ],
});
const size = statSync(`${out}/service.js`).size;
// The service and the chunk it shares with the measuring entry: what the OM path loads.
const loaded = readdirSync(out)
  .filter((f) => f.endsWith('.js') && f !== 'measure.js')
  .map((f) => readFileSync(`${out}/${f}`));
const chunks = [loaded.reduce((n, b) => n + b.length, 0), gzipSync(Buffer.concat(loaded), { level: 9 }).length];

const probe = `
const t0 = performance.now();
const m = await import(${JSON.stringify(`${out}/measure.js`)});
const t1 = performance.now();
await import(${JSON.stringify(`${out}/service.js`)});
const t2 = performance.now();
const req = m.create(m.OMRequestSchema, { cmdType: m.Type.GetS3Secret, clientId: 'x', getS3SecretRequest: { kerberosID: 'a', createIfNotExist: true } });
const frame = m.callFrame(1, new Uint8Array(16), 0, req);
const header = m.toBinary(m.RpcResponseHeaderProtoSchema, m.create(m.RpcResponseHeaderProtoSchema, { callId: 1, status: 0 }));
const body = m.toBinary(m.OMResponseSchema, m.create(m.OMResponseSchema, { cmdType: 49, status: m.Status.OK, getS3SecretResponse: { s3Secret: { kerberosID: 'a', awsSecret: 'b' } } }));
const answer = m.parseAnswer(m.encodeFrame([header, body]).subarray(4));
m.parseOmResponse(answer.body);
const t3 = performance.now();
await m.loadGss();
const t4 = performance.now();
process.stdout.write(JSON.stringify({ importMs: t1 - t0, serviceImportMs: t2 - t1, firstCodecMs: t3 - t2, gssLoadMs: t4 - t3, frame: frame.length }));
`;
writeFileSync(`${out}/probe.mjs`, probe);
const runs = Number(process.argv[2] ?? 7);
const samples = [];
for (let i = 0; i < runs; i++)
  samples.push(JSON.parse(execFileSync(process.execPath, [`${out}/probe.mjs`], { encoding: 'utf8', cwd: root })));
const time = (args) => {
  const t = [];
  for (let i = 0; i < runs; i++) {
    const s = process.hrtime.bigint();
    execFileSync(process.execPath, args, { cwd: root });
    t.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  return median(t);
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const baseline = time(['-e', '0']);
const withService = time(['--input-type=module', '-e', `await import(${JSON.stringify(`${out}/service.js`)})`]);
const pick = (k) => median(samples.map((s) => s[k])).toFixed(1);
process.stdout.write(
  [
    `bundle: service.js ${size} B; with its shared chunk ${chunks[0]} B, gzip ${chunks[1]} B`,
    `start-up Δ (import the service bundle vs node -e 0): ${(withService - baseline).toFixed(1)} ms (median of ${runs})`,
    `import() of the protobuf + framing code: ${pick('importMs')} ms; of the rest of the service: ${pick('serviceImportMs')} ms`,
    `first encode + decode: ${pick('firstCodecMs')} ms`,
    `koffi + libgssapi_krb5 load (loadGss): ${pick('gssLoadMs')} ms`,
  ].join('\n') + '\n',
);
