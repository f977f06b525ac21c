// appliesAtCall() is a promise about table.ts: the handlers it names make every store call
// synchronously. Checked here by running each handler against a store that records calls
// and answers only when told to.
import { describe, expect, it } from 'vitest'
import { appliesAtCall } from '../../src/commands/call-order.js'
import { commands, type CommandContext } from '../../src/commands/table.js'

/** Plausible answers, so handlers get past their awaits. */
const ANSWERS: Record<string, unknown> = {
  get: 'v', has: true, delete: true, keys: ['a'], lrange: ['x'], hgetall: new Map([['f', 'v']]), count: 1, type: 'list',
  ttl: -1, llen: 3, lindex: 'x', popMany: ['x'], lpop: 'x', rpop: 'x', set: true, incr: 1, decr: 0, expire: true, persist: true,
  lpush: 1, rpush: 1, hset: 1, hget: 'v', hdel: 1, hlen: 1, hexists: true, batch: undefined, clear: undefined, ltrim: undefined,
  lset: undefined, version: 1,
}

/** Run `words` against a recording store: the store calls made synchronously, and those made after. */
async function storeCalls(words: string[]): Promise<{ atCall: string[]; later: string[] }> {
  const calls: string[] = []
  const pending: (() => void)[] = []
  const store = new Proxy(
    {},
    {
      get(_t, name: string) {
        if (name === 'stats') return () => ({ mode: 'memory', keys: 0 })
        if (name === 'scan') {
          return () => {
            calls.push('scan')
            return (async function* () {})()
          }
        }
        return (..._args: unknown[]) => {
          calls.push(name)
          return new Promise((resolve) => pending.push(() => resolve(ANSWERS[name])))
        }
      },
    },
  )
  const spec = commands.get((words[0] as string).toUpperCase())
  if (spec?.run === undefined) throw new Error(`no handler for ${words[0] as string}`)
  const running = spec.run({ store } as unknown as CommandContext, words.slice(1))
  const atCall = [...calls]
  // Answer every call, round after round, until the handler settles.
  for (let round = 0; round < 10 && pending.length > 0; round++) {
    for (const answer of pending.splice(0)) answer()
    await new Promise((r) => setTimeout(r, 0))
  }
  await running.catch(() => undefined)
  return { atCall, later: calls.slice(atCall.length) }
}

const EXAMPLES: string[][] = [
  ['PING'], ['PING', 'hi'], ['ECHO', 'x'], ['GET', 'k'], ['SET', 'k', 'v'], ['SET', 'k', 'v', 'NX', 'PX', '100'], ['DEL', 'a', 'b'], ['DELETE', 'a'],
  ['EXISTS', 'a', 'b'], ['KEYS', '*'], ['MGET', 'a', 'b'], ['MSET', 'a', '1', 'b', '2'], ['INCR', 'n'], ['DECR', 'n'], ['INCRBY', 'n', '5'],
  ['DECRBY', 'n', '5'], ['EXPIRE', 'k', '10'], ['EXPIRE', 'k', '0'], ['PEXPIRE', 'k', '10'], ['TTL', 'k'], ['PTTL', 'k'], ['PERSIST', 'k'],
  ['LPUSH', 'l', 'a'], ['RPUSH', 'l', 'a', 'b'], ['LPOP', 'l'], ['RPOP', 'l'], ['LRANGE', 'l', '0', '-1'], ['LLEN', 'l'],
  ['LTRIM', 'l', '0', '1'], ['HSET', 'h', 'f', 'v'], ['HGET', 'h', 'f'], ['HDEL', 'h', 'f'], ['HGETALL', 'h'], ['HLEN', 'h'], ['HEXISTS', 'h', 'f'],
  ['TYPE', 'k'], ['DBSIZE'], ['FLUSHDB'],
]

describe('appliesAtCall', () => {
  it.each(EXAMPLES.map((w) => [w.join(' '), w] as const))('%s makes every store call when run', async (_name, words) => {
    expect(appliesAtCall(words)).toBe(true)
    const { atCall, later } = await storeCalls(words)
    if (!['PING', 'ECHO'].includes(words[0] as string)) expect(atCall.length).toBeGreaterThan(0)
    expect(later).toEqual([])
  })

  it('refuses the commands that read, then write (and the check can fail: they do call the store later)', async () => {
    for (const words of [['SET', 'k', 'v', 'GET'], ['LPOP', 'l', '2'], ['RPOP', 'l', '2'], ['LSET', 'l', '0', 'x'], ['LINDEX', 'l', '0']]) {
      expect(appliesAtCall(words)).toBe(false)
      expect((await storeCalls(words)).later.length).toBeGreaterThan(0)
    }
    for (const words of [['MULTI'], ['EXEC'], ['WATCH', 'k'], ['INFO'], ['RANGE'], ['SNAPSHOT'], ['LOAD', 'f'], ['COMPACT'], ['NOSUCH']]) {
      expect(appliesAtCall(words)).toBe(false)
    }
  })

  it('names only commands of the table', () => {
    for (const words of EXAMPLES) expect(commands.has((words[0] as string).toUpperCase())).toBe(true)
  })
})
