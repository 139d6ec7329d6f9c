/**
 * parseSecretXml against arbitrary input: it returns two clean strings or throws a ResponseError
 * (exit 8), nothing else, quickly; and whatever it returns is safe to `eval` in export form.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES, parseSecretXml, type S3Secret } from '../../src/rest/secret-xml.js';
import { formatExport } from '../../src/format/secret.js';
import { ResponseError } from '../../src/errors.js';

// What the parser must never let through: C0, DEL, C1, line separators, bidi overrides.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** Runs the parser and classifies the outcome; anything but these two fails the property. */
function outcome(input: string | Uint8Array): { secret: S3Secret } | { error: ResponseError } {
  const started = performance.now();
  try {
    const secret = parseSecretXml(input);
    expect(Object.keys(secret).sort()).toEqual(['awsAccessKey', 'awsSecret']);
    for (const value of Object.values(secret)) {
      expect(typeof value).toBe('string');
      expect(value).not.toBe('');
      expect(value).not.toMatch(UNSAFE);
    }
    return { secret };
  } catch (error) {
    if (!(error instanceof ResponseError)) throw new Error(`not a ResponseError: ${String(error)}`, { cause: error });
    expect(error.exitCode).toBe(8);
    expect(error.message).not.toMatch(UNSAFE);
    return { error };
  } finally {
    expect(performance.now() - started).toBeLessThan(100);
  }
}

/** How JAXB writes text: &, <, > escaped, and \r as &#xD;. */
/** No lone surrogates (which UTF-8 cannot carry); String#isWellFormed is ES2024, past this project's lib. */
const wellFormed = (s: string) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

const jaxbEscape = (s: string) =>
  s.replace(/[&<>\r]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#xD;' })[c]!);
const jaxbDocument = (key: string, secret: string) =>
  `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><S3Secret><awsAccessKey>${jaxbEscape(key)}</awsAccessKey><awsSecret>${jaxbEscape(secret)}</awsSecret></S3Secret>`;

const FRAGMENTS = [
  '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>',
  '<S3Secret>',
  '</S3Secret>',
  '<S3Secret/>',
  '<S3Secret xmlns="urn:x">',
  '<awsAccessKey>',
  '</awsAccessKey>',
  '<awsSecret>',
  '</awsSecret>',
  '<awsSecret/>',
  '<x a="1">',
  '</x>',
  "<y b='&amp;'/>",
  '&amp;',
  '&lt;',
  '&gt;',
  '&quot;',
  '&apos;',
  '&#65;',
  '&#x1F600;',
  '&#0;',
  '&#x1b;',
  '&#xD800;',
  '&#1114112;',
  '&foo;',
  '&',
  '<!DOCTYPE S3Secret [<!ENTITY foo "bar">]>',
  '<!ENTITY x SYSTEM "file:///etc/passwd">',
  '<![CDATA[x]]>',
  '<!-- c -->',
  '<!--',
  '<?pi x?>',
  '<?',
  '<',
  '>',
  '/>',
  '</',
  '"',
  "'",
  '=',
  ' ',
  '\n',
  '\r',
  '\t',
  '\u001b[31m',
  '\u009b',
  '\u202e',
  '\ufeff',
  'alice@EX.COM',
  'c0ffee',
  '<html>',
  '<title>Login</title>',
];

/** Random fragments glued together: mostly broken documents. */
const xmlish = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...FRAGMENTS) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
    ),
    { maxLength: 40 },
  )
  .map((parts) => parts.join(''));

/** A valid JAXB document with a few fragments inserted, deleted or replaced: near misses, and some hits. */
const mutated = fc
  .tuple(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
    fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), fc.oneof(fc.constantFrom(...FRAGMENTS), fc.constant(''))), {
      maxLength: 3,
    }),
  )
  .map(([key, secret, edits]) => {
    let text = jaxbDocument(key, secret);
    for (const [at, remove, insert] of edits) {
      const pos = at % (text.length + 1);
      text = text.slice(0, pos) + insert + text.slice(pos + remove);
    }
    return text;
  });

describe('parseSecretXml on arbitrary input', () => {
  it('random bytes: two clean strings or a ResponseError (exit 8), fast', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => void outcome(bytes)),
      { numRuns: 1000 },
    );
  });

  it('random XML-ish text: two clean strings or a ResponseError (exit 8), fast', () => {
    fc.assert(
      fc.property(xmlish, (text) => void outcome(text)),
      { numRuns: 3000 },
    );
  });

  it('mutated valid documents: two clean strings or a ResponseError (exit 8), fast', () => {
    let accepted = 0;
    fc.assert(
      fc.property(mutated, (text) => {
        if ('secret' in outcome(text)) accepted++;
      }),
      { numRuns: 3000 },
    );
    // The property must exercise the accepting path too, not only refusals.
    expect(accepted).toBeGreaterThan(100);
  });

  it('the same text as UTF-8 bytes gives the same outcome', () => {
    fc.assert(
      fc.property(fc.oneof(xmlish, mutated), (text) => {
        // Lone surrogates do not survive UTF-8; skip those inputs.
        fc.pre(wellFormed(text));
        const a = outcome(text);
        const b = outcome(new TextEncoder().encode(text));
        expect('secret' in b ? b.secret : b.error.message).toEqual('secret' in a ? a.secret : a.error.message);
      }),
      { numRuns: 1000 },
    );
  });

  it('round-trips whatever clean strings the server escapes like JAXB', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 80 }),
        fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }),
        (key, secret) => {
          fc.pre(wellFormed(key) && wellFormed(secret));
          const result = outcome(new TextEncoder().encode(jaxbDocument(key, secret)));
          if (UNSAFE.test(key) || UNSAFE.test(secret)) expect('error' in result).toBe(true);
          else expect(result).toEqual({ secret: { awsAccessKey: key, awsSecret: secret } });
        },
      ),
      { numRuns: 2000 },
    );
  });

  it.each<[string, string]>([
    ['nested <S3Secret> openings', '<S3Secret>'.repeat(6000)],
    ['unterminated start tags', '<S3Secret '.repeat(6000)],
    ['a field opened many times', `<S3Secret><awsAccessKey>a</awsAccessKey>${'<awsSecret>'.repeat(5000)}`],
    ['ampersands', `<S3Secret><awsAccessKey>a</awsAccessKey><awsSecret>${'&amp'.repeat(16000)}`],
    ['unterminated comments', '<!--'.repeat(16000)],
    ['unterminated attributes', `<S3Secret a="${'x'.repeat(65000)}`],
    ['many unknown elements', `<S3Secret>${'<x a="1"/>'.repeat(6000)}</S3Secret>`],
    ['deep unknown nesting', `<S3Secret>${'<x>'.repeat(15)}${'</x>'.repeat(15)}`.repeat(300)],
  ])('stays linear on adversarial input near the size cap: %s', (_name, text) => {
    expect(text.length).toBeLessThanOrEqual(MAX_BODY_BYTES);
    expect('error' in outcome(text)).toBe(true);
  });

  it('refuses a body over the size cap without looking at it', () => {
    expect(() => parseSecretXml(new Uint8Array(MAX_BODY_BYTES + 1))).toThrow(/larger than 64 KiB/);
  });
});

describe('what it accepts and refuses', () => {
  const doc = (key: string, secret = 's3cr3t') =>
    `<S3Secret><awsAccessKey>${key}</awsAccessKey><awsSecret>${secret}</awsSecret></S3Secret>`;

  it.each<[string, string]>([
    ['&amp;', '&'],
    ['&lt;', '<'],
    ['&gt;', '>'],
    ['&quot;', '"'],
    ['&apos;', "'"],
    ['&#65;&#x42;&#X43;'.replace('&#X43;', 'C'), 'ABC'],
    ['&#x1F600;', '\u{1F600}'],
    ['&#1114111;', '\u{10FFFF}'],
    ['a&amp;lt;b', 'a&lt;b'],
  ])('decodes %s as %j', (raw, expected) => {
    expect(parseSecretXml(doc(raw)).awsAccessKey).toBe(expected);
  });

  it.each<[string, string, RegExp]>([
    ['&#0;', doc('a&#0;'), /bad character reference/],
    ['a surrogate reference', doc('&#xD800;'), /bad character reference/],
    ['a reference beyond Unicode', doc('&#x110000;'), /bad character reference/],
    ['&#9; (tab)', doc('a&#9;b'), /control characters/],
    ['&#x85; (NEL, C1)', doc('a&#x85;b'), /control characters/],
    ['&#x202E; (bidi override)', doc('a&#x202E;b'), /control characters/],
    ['&#x2028; (line separator)', doc('a&#x2028;b'), /control characters/],
    ['an undeclared entity', doc('&nbsp;'), /undeclared entity &nbsp;/],
    ['a bare ampersand', doc('a & b'), /bare '&'/],
    ['CDATA (JAXB never writes it)', doc('<![CDATA[a]]>'), /CDATA/],
    ['a comment inside a value', doc('a<!-- x -->b'), /holds markup/],
    ['an element inside a value', doc('a<b/>'), /holds markup/],
    ['an internal DTD subset', `<!DOCTYPE S3Secret [<!ENTITY a "b">]>${doc('&a;')}`, /DTD/],
    ['an external DTD', `<!DOCTYPE S3Secret SYSTEM "http://evil.example/x.dtd">${doc('a')}`, /DTD/],
    ['a DTD after the root opened', `<S3Secret><!ENTITY a "b"><awsAccessKey>a</awsAccessKey></S3Secret>`, /DTD/],
    [
      'two <awsSecret>',
      '<S3Secret><awsAccessKey>a</awsAccessKey><awsSecret>1</awsSecret><awsSecret>2</awsSecret></S3Secret>',
      /more than one <awsSecret>/,
    ],
    ['another root', '<Error><Code>x</Code></Error>', /root element is <Error>/],
    ['text after the root', `${doc('a')}junk`, /text after/],
    ['a second root', `${doc('a')}<S3Secret/>`, /more than one root/],
    ['mismatched tags', '<S3Secret><awsAccessKey>a</awsSecret></S3Secret>', /does not close/],
    ['a truncated end tag', doc('a').slice(0, -3), /not closed \(truncated\?\)/],
    ['a truncated value', doc('a').slice(0, 60), /not closed \(truncated\?\)/],
    [
      'a fields-only fragment',
      '<awsAccessKey>a</awsAccessKey><awsSecret>b</awsSecret>',
      /root element is <awsAccessKey>/,
    ],
    ['an HTML page', '<!DOCTYPE html><html><body>Login</body></html>', /HTML page/],
    ['an HTML fragment', '<div><title>SSO</title></div>', /HTML page/],
  ])('refuses %s', (_name, body, message) => {
    const error = (() => {
      try {
        parseSecretXml(body);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ResponseError);
    expect((error as ResponseError).message).toMatch(message);
  });

  it('accepts what JAXB or a pretty-printer may add around the fields', () => {
    const body =
      '\ufeff<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<!-- generated -->\n<S3Secret xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n  <awsAccessKey>testuser/scm@EXAMPLE.COM</awsAccessKey>\n  <futureField kind="x">ignored &amp; fine</futureField>\n  <awsSecret >c0ffee</awsSecret>\n</S3Secret>\n';
    expect(parseSecretXml(new TextEncoder().encode(body))).toEqual({
      awsAccessKey: 'testuser/scm@EXAMPLE.COM',
      awsSecret: 'c0ffee',
    });
  });

  it('keeps leading and trailing spaces in values: they are the server’s strings', () => {
    expect(parseSecretXml(doc(' a ', ' s '))).toEqual({ awsAccessKey: ' a ', awsSecret: ' s ' });
  });

  it('refuses bytes that are not UTF-8 instead of guessing', () => {
    const bytes = Buffer.concat([
      Buffer.from(doc('a').slice(0, 30)),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(doc('a').slice(30)),
    ]);
    expect(() => parseSecretXml(bytes)).toThrow(/not valid UTF-8/);
  });
});

describe('eval of the export lines sets exactly the server strings, or nothing is printed', () => {
  const shellish = fc
    .array(
      fc.oneof(
        fc.constantFrom(
          "'",
          '"',
          '`',
          '$(',
          ')',
          '$',
          '\\',
          ';',
          '&',
          '|',
          '<',
          '>',
          '*',
          '?',
          '[',
          ']',
          '{',
          '}',
          '!',
          '#',
          '~',
          ' ',
          '\n',
          '\r',
          '\t',
          'touch PWNED',
          '%s',
          '\u001b',
        ),
        fc.string({ unit: 'grapheme', maxLength: 4 }),
      ),
      { minLength: 1, maxLength: 20 },
    )
    .map((parts) => parts.join(''));

  it('for 600 random shell-hostile strings, in one bash', async () => {
    const seed = Date.now();
    const accepted: Array<{ key: string; secret: string; out: string }> = [];
    for (const [key, secret] of fc.sample(fc.tuple(shellish, shellish), { numRuns: 600, seed })) {
      const result = outcome(new TextEncoder().encode(jaxbDocument(key, secret)));
      if ('secret' in result) accepted.push({ key, secret, out: formatExport(result.secret) });
    }
    expect(accepted.length, `seed ${seed}`).toBeGreaterThan(100);
    // One shell evaluates every block (NUL-separated: a value never holds NUL) and prints what it got.
    const script = `while IFS= read -r -d '' block; do unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; eval "$block"; printf '%s\\0%s\\0' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"; done`;
    const dir = mkdtempSync(join(tmpdir(), 'ozs3-eval-prop-'));
    try {
      const stdout = await new Promise<string>((resolve, reject) => {
        const child = execFile(
          'bash',
          ['-c', script],
          { cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, maxBuffer: 16 * 1024 * 1024 },
          (error, out) => (error ? reject(new Error(error.message, { cause: error })) : resolve(out)),
        );
        child.stdin!.end(accepted.map((a) => `${a.out}\0`).join(''));
      });
      expect(stdout.split('\0').slice(0, -1), `seed ${seed}`).toEqual(accepted.flatMap((a) => [a.key, a.secret]));
      expect(readdirSync(dir), `seed ${seed}`).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
