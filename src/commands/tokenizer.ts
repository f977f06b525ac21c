import { StoreError } from '../errors.js'

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07', '"': '"', '\\': '\\' }

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f'
}

/**
 * Split a command line into words the way redis-cli does: words separated by
 * whitespace; `"double quotes"` with backslash escapes (`\n \r \t \b \a \" \\ \xHH`);
 * `'single quotes'` literal except `\'`. A closing quote must be followed by
 * whitespace or the end of the line.
 *
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for unbalanced quotes or text
 *   glued to a closing quote.
 */
export function tokenize(line: string): string[] {
  const words: string[] = []
  let i = 0
  const n = line.length
  while (i < n) {
    while (i < n && isSpace(line[i] as string)) i++
    if (i >= n) break
    let word = ''
    const q = line[i]
    if (q === '"' || q === "'") {
      i++
      let closed = false
      while (i < n) {
        const c = line[i] as string
        if (q === '"' && c === '\\' && i + 1 < n) {
          const e = line[i + 1] as string
          if (e === 'x' && i + 3 < n && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
            word += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16))
            i += 4
          } else {
            word += ESCAPES[e] ?? e
            i += 2
          }
        } else if (q === "'" && c === '\\' && line[i + 1] === "'") {
          word += "'"
          i += 2
        } else if (c === q) {
          closed = true
          i++
          break
        } else {
          word += c
          i++
        }
      }
      if (!closed) throw new StoreError('KV_INVALID_ARGUMENT', 'unbalanced quotes in request')
      if (i < n && !isSpace(line[i] as string)) throw new StoreError('KV_INVALID_ARGUMENT', 'closing quote must be followed by a space')
    } else {
      while (i < n && !isSpace(line[i] as string)) word += line[i++]
    }
    words.push(word)
  }
  return words
}

/** Quote `word` so that {@link tokenize} gives it back unchanged. */
export function quote(word: string): string {
  if (word !== '' && !/[\s"'\\]/.test(word) && !/[\x00-\x1f\x7f]/.test(word)) return word
  let out = '"'
  for (const c of word) {
    if (c === '"') out += '\\"'
    else if (c === '\\') out += '\\\\'
    else if (c === '\n') out += '\\n'
    else if (c === '\r') out += '\\r'
    else if (c === '\t') out += '\\t'
    else if (c.charCodeAt(0) < 0x20 || c === '\x7f') out += `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`
    else out += c
  }
  return `${out}"`
}
