/**
 * Raw RFC 822 / MIME e-mail → the text a reader sees: the subject line, then the body with every
 * header, MIME boundary, attachment and HTML tag removed. Used for the built-in `spam` task so a
 * classifier learns from the message, not from relay headers (Received:, X-Spam-*: …), which would
 * make the task trivial and leak the labels.
 */

type Headers = Map<string, string>;

/** Splits "headers\n\nbody", unfolding continuation lines; names are lower-cased. */
function splitMessage(raw: string): { headers: Headers; body: string } {
  const sep = raw.indexOf('\n\n');
  const head = sep < 0 ? raw : raw.slice(0, sep);
  const body = sep < 0 ? '' : raw.slice(sep + 2);
  const headers: Headers = new Map();
  let last: string | null = null;
  for (const line of head.split('\n')) {
    if (/^[ \t]/.test(line) && last !== null) {
      headers.set(last, `${headers.get(last)!} ${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue; // the mbox "From addr date" line and junk
    last = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(last)) headers.set(last, line.slice(colon + 1).trim());
  }
  return { headers, body };
}

function charsetOf(contentType: string): BufferEncoding {
  const m = /charset\s*=\s*"?([\w-]+)/i.exec(contentType);
  return m && /^utf-?8$/i.test(m[1]!) ? 'utf8' : 'latin1';
}

function decodeQuotedPrintable(s: string, encoding: BufferEncoding): string {
  const joined = s.replace(/=\r?\n/g, ''); // soft line breaks
  const bytes: number[] = [];
  for (let i = 0; i < joined.length; i++) {
    const c = joined.charCodeAt(i);
    if (c === 0x3d && /^[0-9A-Fa-f]{2}$/.test(joined.slice(i + 1, i + 3))) {
      bytes.push(parseInt(joined.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 256) {
      bytes.push(c);
    } else {
      bytes.push(...Buffer.from(joined[i]!, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString(encoding);
}

/** RFC 2047 encoded words in headers: =?charset?B?base64?= and =?charset?Q?text?=. */
function decodeHeaderWords(s: string): string {
  return s.replace(/=\?([\w-]+)\?([BbQq])\?([^?]*)\?=/g, (_m, charset: string, kind: string, data: string) => {
    const enc: BufferEncoding = /^utf-?8$/i.test(charset) ? 'utf8' : 'latin1';
    if (kind.toUpperCase() === 'B') return Buffer.from(data, 'base64').toString(enc);
    return decodeQuotedPrintable(data.replace(/_/g, ' '), enc);
  });
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', copy: '©', reg: '®', trade: '™', mdash: '—', ndash: '–', hellip: '…' };

/** Visible text of an HTML fragment: no tags, comments, scripts or styles; entities decoded. */
export function htmlToText(html: string): string {
  return html
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<(script|style|head|title)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<(br|\/p|\/div|\/tr|\/li|\/h[1-6]|p|div|tr|li|h[1-6])\b[^>]*>/gi, '\n')
    .replace(/<\/?[a-zA-Z!?][^>]*>/g, ' ')
    .replace(/&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);/g, (m, e: string) => {
      if (e[0] === '#') {
        const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : ' ';
      }
      return ENTITIES[e.toLowerCase()] ?? m;
    });
}

const looksLikeHtml = (s: string) => /<\/?(html|body|table|font|p|br|div|a\s)\b/i.test(s);

/** The readable text of one MIME entity (recursing into multipart bodies). */
function entityText(headers: Headers, body: string, depth: number): string {
  const type = (headers.get('content-type') ?? 'text/plain').toLowerCase();
  if (type.startsWith('multipart/') && depth < 8) {
    const boundary = /boundary\s*=\s*"?([^";]+)"?/i.exec(headers.get('content-type')!)?.[1];
    if (!boundary) return '';
    const parts = body.split(`--${boundary}`).slice(1).filter((p) => !p.startsWith('--'));
    const texts = parts.map((p) => {
      const sub = splitMessage(p.replace(/^[ \t]*\n/, ''));
      return { type: (sub.headers.get('content-type') ?? 'text/plain').toLowerCase(), text: entityText(sub.headers, sub.body, depth + 1) };
    });
    if (type.startsWith('multipart/alternative')) {
      const plain = texts.find((t) => t.type.startsWith('text/plain') && t.text.trim());
      return plain ? plain.text : (texts.find((t) => t.text.trim())?.text ?? '');
    }
    return texts.map((t) => t.text).filter((t) => t.trim()).join('\n\n');
  }
  if (type.startsWith('message/rfc822') && depth < 8) {
    const inner = splitMessage(body);
    return entityText(inner.headers, inner.body, depth + 1);
  }
  if (!type.startsWith('text/')) return ''; // images, attachments
  const transfer = (headers.get('content-transfer-encoding') ?? '').toLowerCase();
  const charset = charsetOf(type);
  let text = body;
  if (transfer.includes('quoted-printable')) text = decodeQuotedPrintable(body, charset);
  else if (transfer.includes('base64')) text = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString(charset);
  // A forwarded message pasted in without a MIME wrapper: its own headers open the body.
  if (depth < 8 && /^\s*(Return-Path|Received|Delivered-To):/i.test(text)) {
    const inner = splitMessage(text.replace(/^\s+/, ''));
    return entityText(inner.headers, inner.body, depth + 1);
  }
  return type.startsWith('text/html') || looksLikeHtml(text) ? htmlToText(text) : text;
}

/** Tidy whitespace: trim lines, at most one blank line in a row, no control characters. */
function tidy(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, ' ')
    .split('\n')
    .map((l) => l.replace(/[ \t\u00a0]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** "Subject\n\nbody" with headers, MIME structure and HTML stripped. */
export function emailToText(raw: string): string {
  const { headers, body } = splitMessage(raw.replace(/\r\n?/g, '\n'));
  const subject = decodeHeaderWords(headers.get('subject') ?? '').trim();
  const text = tidy(entityText(headers, body, 0));
  return tidy(subject ? `${subject}\n\n${text}` : text);
}
