/**
 * The S3Secret XML body, parsed strictly and boundedly: a single linear scan (no backtracking
 * regexes over the body), no DTD, no entities beyond XML's five predefined ones and numeric
 * references, a size cap, strict UTF-8, and no control characters in the result (so every output
 * format, `eval` included, stays safe).
 */
import { ResponseError } from '../errors.js';

export interface S3Secret {
  awsAccessKey: string;
  awsSecret: string;
}

export const MAX_BODY_BYTES = 64 * 1024;

const ROOT = 'S3Secret';
const FIELDS = ['awsAccessKey', 'awsSecret'] as const;
type Field = (typeof FIELDS)[number];
/** JAXB writes two levels; anything much deeper is an attack on the parser, not a secret. */
const MAX_DEPTH = 16;

const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
/** What sanitizeText would strip: C0, DEL, C1, line/paragraph separators, bidi overrides. */
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

// Sticky patterns, each tried at one position: linear over the whole body.
const NAME = /[A-Za-z_:][A-Za-z0-9_.:-]*/y;
const SPACE = /[ \t\r\n]+/y;
const ATTRIBUTE = /([A-Za-z_:][A-Za-z0-9_.:-]*)[ \t\r\n]*=[ \t\r\n]*(?:"([^"<]*)"|'([^'<]*)')/y;
const END_TAG = /<\/([A-Za-z_:][A-Za-z0-9_.:-]*)[ \t\r\n]*>/y;

function malformed(what: string): ResponseError {
  return new ResponseError('MALFORMED_RESPONSE', `the server's S3Secret response is malformed: ${what}`);
}

function htmlPage(): ResponseError {
  return new ResponseError(
    'HTML_RESPONSE',
    'the endpoint answered with an HTML page, not the S3Secret XML (a login page, proxy or wrong URL?)',
    {
      hint: 'check --endpoint: it must be the S3 Gateway secret endpoint, e.g. https://s3g.example.com:19879',
    },
  );
}

export function oversizedBody(): ResponseError {
  return new ResponseError(
    'BODY_TOO_LARGE',
    `the response body is larger than ${MAX_BODY_BYTES / 1024} KiB; an S3Secret is a few hundred bytes`,
    {
      hint: 'check --endpoint: it must be the S3 Gateway secret endpoint',
    },
  );
}

/** Character data: the five predefined entities and numeric references; nothing else. */
function decodeText(raw: string, where: string): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(
    /&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[A-Za-z][A-Za-z0-9]{0,31});|&/g,
    (whole, ref: string | undefined) => {
      if (ref === undefined) throw malformed(`a bare '&' in ${where}`);
      if (ref.startsWith('#')) {
        const code = ref[1] === 'x' ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
        if (!(code > 0 && code <= 0x10ffff) || (code >= 0xd800 && code <= 0xdfff))
          throw malformed(`a bad character reference ${whole} in ${where}`);
        return String.fromCodePoint(code);
      }
      const value = PREDEFINED[ref];
      if (value === undefined) throw malformed(`an undeclared entity &${ref}; in ${where} (ozs3 never processes DTDs)`);
      return value;
    },
  );
}

export function looksLikeHtml(body: string): boolean {
  return /^\s*(<!doctype\s+html|<html[\s>])/i.test(body) || /<(head|body|title)[\s>]/i.test(body.slice(0, 2048));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses the 200 body of PUT /secret. Bytes are decoded as strict UTF-8 (JAXB writes UTF-8). */
export function parseSecretXml(body: string | Uint8Array): S3Secret {
  if (body.length > MAX_BODY_BYTES) throw oversizedBody();
  let xml: string;
  if (typeof body === 'string') {
    xml = body;
  } else {
    try {
      xml = utf8.decode(body);
    } catch {
      throw malformed('it is not valid UTF-8');
    }
  }
  if (xml.trim() === '') throw malformed('the body is empty');
  if (looksLikeHtml(xml)) throw htmlPage();
  const secret = scanSecretXml(xml);
  for (const name of FIELDS) {
    const value = secret[name];
    if (value === '') throw malformed(`<${name}> is empty`);
    if (UNSAFE_CHARS.test(value)) throw malformed(`<${name}> holds control characters`);
  }
  return secret;
}

function scanSecretXml(xml: string): S3Secret {
  const n = xml.length;
  const stack: string[] = [];
  const values: Partial<Record<Field, string>> = {};
  /** The field whose text is being read (a direct child of the root), if any. */
  let field: Field | undefined;
  let rootSeen = false;
  let i = xml.charCodeAt(0) === 0xfeff ? 1 : 0;

  const at = (re: RegExp, pos: number): RegExpExecArray | null => {
    re.lastIndex = pos;
    return re.exec(xml);
  };
  const where = () => (stack.length > 0 ? `<${stack[stack.length - 1]}>` : 'the document');

  while (i < n) {
    const lt = xml.indexOf('<', i);
    const end = lt < 0 ? n : lt;
    if (end > i) {
      const raw = xml.slice(i, end);
      const blank = raw.trim() === '';
      if (field !== undefined) values[field] += decodeText(raw, `<${field}>`);
      else if (stack.length === 0 && !blank)
        throw malformed(rootSeen ? `text after </${ROOT}>` : `no <${ROOT}> element`);
      else if (stack.length === 1 && !blank) throw malformed(`text directly inside <${ROOT}>`);
      else decodeText(raw, where()); // deeper, unknown elements: checked, then ignored
    }
    if (lt < 0) break;
    i = lt;

    if (xml.startsWith('</', i)) {
      const m = at(END_TAG, i);
      if (!m)
        throw malformed(
          xml.indexOf('>', i) < 0 ? `${where()} is not closed (truncated?)` : `a broken end tag in ${where()}`,
        );
      const name = m[1]!;
      if (stack[stack.length - 1] !== name)
        throw malformed(stack.length === 0 ? `a stray </${name}>` : `</${name}> does not close ${where()}`);
      stack.pop();
      if (stack.length === 1) field = undefined;
      i = END_TAG.lastIndex;
      continue;
    }
    if (field !== undefined)
      throw malformed(
        xml.startsWith('<![CDATA[', i)
          ? `a CDATA section in <${field}>, which JAXB never writes`
          : `<${field}> holds markup`,
      );
    if (xml.startsWith('<!--', i)) {
      const close = xml.indexOf('-->', i + 4);
      if (close < 0) throw malformed('an unterminated comment (truncated?)');
      i = close + 3;
      continue;
    }
    if (xml.startsWith('<![CDATA[', i)) throw malformed('a CDATA section, which JAXB never writes');
    if (xml.startsWith('<!', i)) {
      throw malformed(
        /^<!(DOCTYPE|ENTITY|ELEMENT|ATTLIST)/i.test(xml.slice(i, i + 10))
          ? 'it declares a DTD, which ozs3 never processes'
          : 'a markup declaration',
      );
    }
    if (xml.startsWith('<?', i)) {
      const close = xml.indexOf('?>', i + 2);
      if (close < 0) throw malformed('an unterminated processing instruction (truncated?)');
      i = close + 2;
      continue;
    }

    // A start tag: name, attributes (checked for entities, then ignored), `>` or `/>`.
    const nameMatch = at(NAME, i + 1);
    if (!nameMatch) throw malformed(`a stray '<' in ${where()}`);
    const name = nameMatch[0];
    let pos = NAME.lastIndex;
    let selfClosing = false;
    for (;;) {
      const space = at(SPACE, pos);
      if (space) pos = SPACE.lastIndex;
      if (xml.startsWith('/>', pos)) {
        selfClosing = true;
        pos += 2;
        break;
      }
      if (xml[pos] === '>') {
        pos += 1;
        break;
      }
      if (pos >= n) throw malformed(`the <${name}> tag is not closed (truncated?)`);
      const attr = space ? at(ATTRIBUTE, pos) : null;
      if (!attr) throw malformed(`a broken <${name}> tag`);
      decodeText(attr[2] ?? attr[3] ?? '', `an attribute of <${name}>`);
      pos = ATTRIBUTE.lastIndex;
    }
    i = pos;

    if (stack.length === 0) {
      if (rootSeen) throw malformed(`more than one root element`);
      if (name !== ROOT) throw malformed(`the root element is <${name}>, not <${ROOT}>`);
      rootSeen = true;
    } else if (stack.length === 1 && (FIELDS as readonly string[]).includes(name)) {
      const f = name as Field;
      if (values[f] !== undefined) throw malformed(`more than one <${f}> element`);
      values[f] = '';
      if (!selfClosing) field = f;
    }
    if (!selfClosing) {
      if (stack.length >= MAX_DEPTH) throw malformed('elements nested too deeply');
      stack.push(name);
    }
  }

  if (!rootSeen) throw malformed(`no <${ROOT}> element`);
  if (stack.length > 0) throw malformed(`the <${stack[0]}> element is not closed (truncated?)`);
  for (const f of FIELDS) if (values[f] === undefined) throw malformed(`no <${f}> element`);
  return { awsAccessKey: values.awsAccessKey!, awsSecret: values.awsSecret! };
}
