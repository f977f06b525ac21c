// Replies to RESP text: RESP2, or RESP3 once a client said `HELLO 3`. Strings are UTF-8 and
// lengths are byte lengths, so any stored string comes back byte for byte.
import type { Reply } from '../commands/reply.js'

/** A reply as the server sends it: a command's reply, a map (HELLO; HGETALL under RESP3), or an array of those (EXEC). */
export type WireReply =
  | Reply
  | { readonly type: 'map'; readonly value: readonly (readonly [WireReply, WireReply])[] }
  | { readonly type: 'array'; readonly value: readonly WireReply[] | null }

/** RESP version a connection speaks. */
export type Protocol = 2 | 3

/** A status or error line may not hold CR or LF: they would end the line early. */
function line(text: string): string {
  return /[\r\n]/.test(text) ? text.replace(/[\r\n]+/g, ' ') : text
}

/** Append `reply` in RESP `protocol` to `out` and return it (one string per batch of replies). */
export function encodeReply(reply: WireReply, protocol: Protocol, out = ''): string {
  switch (reply.type) {
    case 'status':
      return `${out}+${line(reply.value)}\r\n`
    case 'error':
      return `${out}-${line(reply.code)} ${line(reply.message)}\r\n`
    case 'integer':
      return `${out}:${reply.value}\r\n`
    case 'bulk':
      if (reply.value === null) return `${out}${protocol === 3 ? '_' : '$-1'}\r\n`
      return `${out}$${Buffer.byteLength(reply.value)}\r\n${reply.value}\r\n`
    case 'array': {
      if (reply.value === null) return `${out}${protocol === 3 ? '_' : '*-1'}\r\n`
      let s = `${out}*${reply.value.length}\r\n`
      for (const item of reply.value) s = encodeReply(item, protocol, s)
      return s
    }
    case 'map': {
      // RESP2 has no map type: a flat array of keys and values, as Redis sends it.
      let s = `${out}${protocol === 3 ? '%' : '*'}${protocol === 3 ? reply.value.length : reply.value.length * 2}\r\n`
      for (const [k, v] of reply.value) s = encodeReply(v, protocol, encodeReply(k, protocol, s))
      return s
    }
  }
}
