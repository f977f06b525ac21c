import type { Reply } from '../commands/index.js'
import { quote } from '../commands/tokenizer.js'

/**
 * A bulk string as one line: bare when it is printable, else quoted with escapes as
 * redis-cli does (`"a\nb"`), so every reply stays on its own line. A value that itself
 * starts with `"` is quoted too, so a quoted line always means escapes.
 */
function bare(value: string): string {
  return /[\x00-\x1f\x7f]/.test(value) || value.startsWith('"') ? quote(value) : value
}

/**
 * Text for a reply, as redis-cli prints it, with the conventions of kvstore's first CLI:
 * bare strings (`Alice`, not `"Alice"`; quoted only when they hold control characters), `(nil)`, `(integer) N`, `(error) …`, numbered
 * array items, and one bare item per line for key lists (KEYS).
 */
export function formatReply(reply: Reply, indent = ''): string {
  switch (reply.type) {
    case 'status':
      return reply.value
    case 'bulk':
      return reply.value === null ? '(nil)' : bare(reply.value)
    case 'integer':
      return `(integer) ${reply.value}`
    case 'error':
      return `(error) ${reply.code} ${reply.message}`
    case 'array': {
      const items = reply.value
      if (items === null) return '(nil)'
      if (items.length === 0) return '(empty array)'
      if (reply.lines) return items.map((r) => formatReply(r)).join('\n')
      const width = String(items.length).length
      return items
        .map((r, i) => {
          const label = `${String(i + 1).padStart(width)}) `
          const body = formatReply(r, indent + ' '.repeat(label.length))
          return (i === 0 ? '' : indent) + label + body
        })
        .join('\n')
    }
  }
}

/** JSON for a reply: null, string, number, array, or `{ "error": { code, message } }`. */
export function replyToJson(reply: Reply): unknown {
  switch (reply.type) {
    case 'status':
    case 'bulk':
    case 'integer':
      return reply.value
    case 'array':
      return reply.value === null ? null : reply.value.map(replyToJson)
    case 'error':
      return { error: { code: reply.kvCode ?? reply.code, message: `${reply.code} ${reply.message}` } }
  }
}
