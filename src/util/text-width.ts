/**
 * Terminal column widths: East Asian wide and fullwidth characters (CJK ideographs, kana, hangul,
 * fullwidth punctuation) take two columns, combining marks none, so tables of Chinese tokens or
 * labels line up as English ones do (String.padEnd counts UTF-16 code units).
 */
const WIDE = /[\u1100-\u115F\u2E80-\u303E\u3041-\u33FF\u3400-\u4DBF\u4E00-\u9FFF\uA000-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFE30-\uFE4F\uFF00-\uFF60\uFFE0-\uFFE6\u{20000}-\u{2FFFD}\u{30000}-\u{3FFFD}]/u;
const ZERO = /[\p{Mn}\p{Me}\u200B-\u200F]/u;

/** Columns `text` takes in a terminal. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) width += ZERO.test(ch) ? 0 : WIDE.test(ch) ? 2 : 1;
  return width;
}

/** padEnd by terminal columns. */
export function padEndColumns(text: string, columns: number): string {
  return text + ' '.repeat(Math.max(0, columns - displayWidth(text)));
}

/** padStart by terminal columns. */
export function padStartColumns(text: string, columns: number): string {
  return ' '.repeat(Math.max(0, columns - displayWidth(text))) + text;
}

/** The longest prefix of `text` (whole code points) that fits in `columns` terminal columns. */
export function clipColumns(text: string, columns: number): string {
  let width = 0;
  let out = '';
  for (const ch of text) {
    const w = displayWidth(ch);
    if (width + w > columns) break;
    width += w;
    out += ch;
  }
  return out;
}
