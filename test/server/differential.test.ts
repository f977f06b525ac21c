// Differential test over the wire: one seeded random command stream goes to a real
// redis-server and to kvstore, and every reply is compared byte for byte.
//
//   KVSTORE_DIFF_COMMANDS  commands per comparison (default 3,000: about 1 s each here)
//   KVSTORE_DIFF_SEED      seed of the stream (default 18); a failure prints the seed
//
// Five comparisons, each against its own fresh redis-server without persistence:
//   1. redis-server vs a second redis-server: proves the harness (stream, normalization,
//      comparison) reports 0 differences between two identical servers;
//   2. the command language in process (createSession over an in-memory Store, replies
//      encoded as RESP2 here): separates a difference of the commands from one of the server;
//   3. `createServer` over an in-memory Store, spoken to over TCP like redis-server, in
//      RESP2 and (after HELLO 3 on every connection, on both sides) in RESP3;
//   4. `kvstore serve --dir <tmp> --sync never`, the CLI as a child process, over TCP.
//
// What the stream covers: strings (SET with NX/XX/GET/EX/PX/KEEPTTL, GET, DEL, EXISTS,
// MGET, MSET, INCR/DECR/INCRBY/DECRBY with non-integers and out-of-range arguments), expiry
// (EXPIRE/PEXPIRE/TTL/PTTL/PERSIST), lists (LPUSH/RPUSH/LPOP/RPOP with counts, LRANGE, LLEN,
// LINDEX, LSET, LTRIM), hashes (HSET/HGET/HDEL/HGETALL/HLEN/HEXISTS), TYPE, KEYS with
// patterns, DBSIZE, FLUSHDB, ECHO, PING, wrong types, wrong arity, unknown commands,
// MULTI/EXEC/DISCARD/WATCH/UNWATCH on two connections (one changes what the other
// watches), inline commands and pipelined batches. Arguments are bytes (latin1 strings),
// including non-ASCII and binary values.
//
// Normalized before comparing, because Redis leaves it unspecified or it is timing:
//   - KEYS: elements sorted (Redis replies in hash-table order, kvstore in key order);
//   - HGETALL: field/value pairs sorted (Redis's order depends on its encoding);
//   - TTL and PTTL replies >= 0: equal when within 1 s / 1,000 ms of each other (the two
//     servers answer at slightly different moments; every TTL in the stream is >= 100 s,
//     so nothing expires during a run). -1 and -2 are compared exactly.
// Not in the stream, on purpose: integers between 2^53 and 2^63. kvstore's integers are
// JavaScript safe integers (|n| <= 2^53 - 1), where Redis's are int64: a value or result
// in that band is an integer in Redis and "ERR value is not an integer or out of range" in
// kvstore. Beyond int64 both reply that error, and the stream checks it. Nor the empty
// key: kvstore refuses it ("ERR key must not be empty", KV_INVALID_KEY), Redis takes it.
// The server streams differ from the others in two places, each explained where it is
// handled: valid UTF-8 only (TEXT_FOR_BINARY), and no byte-counting KEYS pattern
// (TEXT_FOR_BYTE_PATTERN).
import { describe, expect, it } from 'vitest'
import { rng } from '../../bench/lib/data.js'
import { createSession, type Reply, type Session } from '../../src/commands/index.js'
import { createServer } from '../../src/server/index.js'
import { Store } from '../../src/store.js'
import { startKvstoreServer } from '../helpers/kvstore-server.js'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { parseReply, RespClient, type RespValue } from '../helpers/resp-client.js'

const COMMANDS = Number(process.env.KVSTORE_DIFF_COMMANDS ?? 3_000)
const SEED = Number(process.env.KVSTORE_DIFF_SEED ?? 18)
/** Differences printed in full when a comparison fails. */
const SHOW = 15

// ------------------------------------------------------------------------- the stream

/** One command: its words (latin1 strings: one char per byte), sent as RESP or inline. */
interface Cmd {
  args: string[]
  inline: boolean
}
/** Commands written in one go on one connection (a pipelined batch when more than one). */
interface Step {
  conn: 0 | 1
  cmds: Cmd[]
}

const latin1 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1')

const STRING_KEYS = ['s0', 's1', 's2', 'n0', 'n1']
const LIST_KEYS = ['l0', 'l1', 'l2']
const HASH_KEYS = ['h0', 'h1']
const ODD_KEYS = [latin1('ké'), 'a:b']
const ALL_KEYS = [...STRING_KEYS, ...LIST_KEYS, ...HASH_KEYS, ...ODD_KEYS, 'missing']
const BINARY = '\x00\xff\r\n'
const ALL_VALUES = ['v', 'hello', '0', '1', '-1', '42', '10', 'abc', '', 'two words', latin1('é'), '\x00\xff\r\n', '1.5', 'x'.repeat(100)]
/**
 * The server takes arguments as UTF-8 text and refuses other bytes ("ERR kvstore keys and
 * values are text: every argument must be valid UTF-8"), where Redis is binary-safe; the
 * streams sent to a server carry this value, control characters but valid UTF-8, instead.
 */
const TEXT_FOR_BINARY = '\x00\x7f\r\n'
/**
 * Over the server, keys are text too, so a KEYS `?` stands for one character where Redis's
 * stands for one byte: `k?` matches "ké" in kvstore, not in Redis (é is two bytes). The
 * streams sent to a server use `k*` in its place.
 */
const TEXT_FOR_BYTE_PATTERN = 'k*'
/**
 * Stored integers and near-integers; none in the 2^53..2^63 band (see the file comment).
 * Not `-0`: the store's INCR reads a stored "-0" as 0 where Redis refuses it (toInteger in
 * src/keyspace.ts); `-0` as an argument is in {@link INCREMENTS}.
 */
const INTS = ['0', '1', '-1', '7', '-100', '1000000', '4503599627370496', '-4503599627370496', '99999999999999999999', '-99999999999999999999', '01', '+1', ' 1', '1.5', '1e3', 'abc', '']
/** Small increments, so sums stay far from 2^53, plus invalid ones. */
const INCREMENTS = ['1', '-1', '0', '5', '-100', '1000000', '99999999999999999999', '01', '-0', '+1', '1.5', 'abc', '']
/** List indexes: in range, out of range, and not integers. */
const INDEXES = ['0', '1', '2', '-1', '-2', '-3', '5', '-10', '100', '99999999999999999', '-99999999999999999', '1.5', 'x', '01']
const FIELDS = ['f0', 'f1', 'f2', 'f3', latin1('fé')]
const BYTE_PATTERN = 'k?'
const ALL_PATTERNS = ['*', 's*', 'l?', 'h[01]', '[^sl]*', '*0', 'n[0-9]', 'missing', '\\*', 'a:*', '?', '[a-c]*', BYTE_PATTERN, latin1('ké')]
/** Long enough that nothing expires during a run, plus invalid and immediate ones. */
const SECONDS = ['100', '1000', '86400', '0', '-5', 'abc', '1.5']
const MILLIS = ['100000', '5000000', '0', '-1', 'abc']
const UNKNOWN = ['FOO', 'GETX', 'hgetallx', 'CONFIGX']

/** The stream of `count` commands from `seed`; with `text`, every argument is valid UTF-8. */
function stream(seed: number, count: number, text: boolean): Step[] {
  const VALUES = text ? ALL_VALUES.map((v) => (v === BINARY ? TEXT_FOR_BINARY : v)) : ALL_VALUES
  const PATTERNS = text ? ALL_PATTERNS.map((p) => (p === BYTE_PATTERN ? TEXT_FOR_BYTE_PATTERN : p)) : ALL_PATTERNS
  const rnd = rng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T
  const chance = (p: number): boolean => rnd() < p
  const many = <T>(xs: readonly T[], min: number, max: number): T[] => Array.from({ length: min + Math.floor(rnd() * (max - min + 1)) }, () => pick(xs))
  // Keys of the right type most of the time; any key (a wrong type) otherwise.
  const key = (pool: string[]): string => (chance(0.85) ? pick(pool) : pick(ALL_KEYS))
  const sk = () => key(STRING_KEYS)
  const lk = () => key(LIST_KEYS)
  const hk = () => key(HASH_KEYS)
  const anyKey = () => pick(ALL_KEYS)

  const setCmd = (): string[] => {
    const args = ['SET', sk(), chance(0.3) ? pick(INTS) : pick(VALUES)]
    // Mostly valid option sets; sometimes a random mix, which may be a syntax error.
    const opts: string[] = []
    if (chance(0.25)) opts.push(pick(['NX', 'XX']))
    if (chance(0.2)) opts.push('GET')
    const t = rnd()
    if (t < 0.15) opts.push('EX', pick(SECONDS))
    else if (t < 0.25) opts.push('PX', pick(MILLIS))
    else if (t < 0.3) opts.push('KEEPTTL')
    if (chance(0.05)) opts.push(pick(['NX', 'XX', 'GET', 'KEEPTTL', 'EX', 'PX', 'BOGUS', 'ex', 'nx']))
    for (let i = opts.length - 1; i > 0; i--) {
      if (chance(0.3)) {
        const j = Math.floor(rnd() * (i + 1))
        // Keep EX/PX next to their value most of the time.
        if (!/^(EX|PX)$/.test(opts[j] as string) && !/^(EX|PX)$/.test(opts[i - 1] as string)) [opts[i], opts[j]] = [opts[j] as string, opts[i] as string]
      }
    }
    return [...args, ...opts]
  }

  const generators: [number, () => string[]][] = [
    [10, setCmd],
    [6, () => ['GET', sk()]],
    [2, () => ['DEL', ...many(ALL_KEYS, 1, 3)]],
    [2, () => ['EXISTS', ...many(ALL_KEYS, 1, 3)]],
    [2, () => ['MGET', ...many(ALL_KEYS, 1, 4)]],
    [2, () => ['MSET', ...many(STRING_KEYS, 1, 3).flatMap((k) => [k, pick(VALUES)]), ...(chance(0.1) ? ['odd'] : [])]],
    [3, () => ['INCR', sk()]],
    [2, () => ['DECR', sk()]],
    [3, () => ['INCRBY', sk(), pick(INCREMENTS)]],
    [2, () => ['DECRBY', sk(), pick(INCREMENTS)]],
    [2, () => ['SET', pick(['n0', 'n1']), pick(INTS)]],
    [2, () => ['EXPIRE', anyKey(), pick(SECONDS)]],
    [2, () => ['PEXPIRE', anyKey(), pick(MILLIS)]],
    [3, () => ['TTL', anyKey()]],
    [3, () => ['PTTL', anyKey()]],
    [2, () => ['PERSIST', anyKey()]],
    [4, () => ['LPUSH', lk(), ...many(VALUES, 1, 3)]],
    [4, () => ['RPUSH', lk(), ...many(VALUES, 1, 3)]],
    [3, () => ['LPOP', lk(), ...(chance(0.4) ? [pick(['0', '1', '2', '5', '-1', 'x'])] : [])]],
    [3, () => ['RPOP', lk(), ...(chance(0.4) ? [pick(['0', '1', '2', '5', '-1', 'x'])] : [])]],
    [4, () => ['LRANGE', lk(), pick(INDEXES), pick(INDEXES)]],
    [2, () => ['LLEN', lk()]],
    [2, () => ['LINDEX', lk(), pick(INDEXES)]],
    [2, () => ['LSET', lk(), pick(INDEXES), pick(VALUES)]],
    [1, () => ['LTRIM', lk(), pick(INDEXES), pick(INDEXES)]],
    [4, () => ['HSET', hk(), ...many(FIELDS, 1, 3).flatMap((f) => [f, pick(VALUES)])]],
    [3, () => ['HGET', hk(), pick(FIELDS)]],
    [2, () => ['HDEL', hk(), ...many(FIELDS, 1, 2)]],
    [2, () => ['HGETALL', hk()]],
    [2, () => ['HLEN', hk()]],
    [2, () => ['HEXISTS', hk(), pick(FIELDS)]],
    [3, () => ['TYPE', anyKey()]],
    [2, () => ['KEYS', pick(PATTERNS)]],
    [2, () => ['DBSIZE']],
    [0.3, () => ['FLUSHDB']],
    [1, () => ['ECHO', pick(VALUES)]],
    [1, () => (chance(0.5) ? ['PING'] : ['PING', pick(VALUES)])],
    [2, () => ['MULTI']],
    [1.5, () => ['EXEC']],
    [0.5, () => ['DISCARD']],
    [1.5, () => ['WATCH', ...many(ALL_KEYS, 1, 2)]],
    [0.5, () => ['UNWATCH']],
    [1, () => [pick(UNKNOWN), ...many(VALUES, 0, 2)]],
    [2, wrongArity],
  ]
  function wrongArity(): string[] {
    // Too few words for any command, or too many for one whose arity is fixed in Redis too.
    const few: string[][] = [
      ['GET'], ['SET', 'k'], ['DEL'], ['EXISTS'], ['MGET'], ['MSET'], ['MSET', 'k'], ['INCR'], ['INCRBY', 'k'], ['DECRBY', 'k'], ['EXPIRE', 'k'],
      ['PEXPIRE'], ['TTL'], ['PTTL'], ['PERSIST'], ['LPUSH', 'l0'], ['RPUSH'], ['LPOP'], ['RPOP'], ['LRANGE', 'l0', '0'], ['LLEN'], ['LINDEX', 'l0'],
      ['LSET', 'l0', '0'], ['LTRIM', 'l0', '0'], ['HSET', 'h0', 'f'], ['HSET', 'h0'], ['HGET', 'h0'], ['HDEL', 'h0'], ['HGETALL'], ['HLEN'],
      ['HEXISTS', 'h0'], ['TYPE'], ['KEYS'], ['ECHO'], ['WATCH'],
    ]
    const tooMany: string[][] = [
      ['GET', 'a', 'b'], ['INCR', 'a', 'b'], ['DECR', 'a', '1'], ['INCRBY', 'a', '1', '2'], ['TTL', 'a', 'b'], ['PTTL', 'a', 'b'], ['PERSIST', 'a', 'b'],
      ['LRANGE', 'l0', '0', '1', '2'], ['LLEN', 'a', 'b'], ['LINDEX', 'a', '0', '1'], ['LSET', 'a', '0', 'v', 'w'], ['LTRIM', 'a', '0', '1', '2'],
      ['HGET', 'h0', 'f', 'g'], ['HGETALL', 'a', 'b'], ['HLEN', 'a', 'b'], ['HEXISTS', 'a', 'f', 'g'], ['TYPE', 'a', 'b'], ['KEYS', '*', 'x'],
      ['DBSIZE', 'x'], ['ECHO', 'a', 'b'], ['PING', 'a', 'b'], ['MULTI', 'x'], ['EXEC', 'x'], ['DISCARD', 'x'], ['UNWATCH', 'x'], ['LPOP', 'l0', '1', '2'],
      ['RPOP', 'l0', '1', '2'],
    ]
    const words = chance(0.5) ? pick(few) : pick(tooMany)
    return chance(0.2) ? [(words[0] as string).toLowerCase(), ...words.slice(1)] : [...words]
  }
  const total = generators.reduce((s, [w]) => s + w, 0)
  const command = (): string[] => {
    let r = rnd() * total
    for (const [w, g] of generators) {
      r -= w
      if (r < 0) return g()
    }
    return (generators[0] as [number, () => string[]])[1]()
  }
  /** Whether inline syntax (space-separated words) can carry these words unchanged. */
  const inlineable = (args: string[]) => args.every((a) => /^[A-Za-z0-9:*?[\]^_-]+$/.test(a) && !a.startsWith('"'))

  const steps: Step[] = []
  let n = 0
  while (n < count) {
    const conn: 0 | 1 = chance(0.8) ? 0 : 1
    const size = chance(0.15) ? 2 + Math.floor(rnd() * 15) : 1
    const cmds: Cmd[] = []
    for (let i = 0; i < size && n < count; i++, n++) {
      const args = command()
      cmds.push({ args, inline: inlineable(args) && chance(0.1) })
    }
    steps.push({ conn, cmds })
  }
  return steps
}

// ------------------------------------------------------------------------ the targets

/** A server (or stand-in) the stream is run against: one step in, its raw replies out. */
interface Target {
  readonly name: string
  run(step: Step): Promise<Buffer[]>
  close(): Promise<void>
}

/** RESP framing of one command's words (latin1: each char is one byte). */
function frame(cmd: Cmd): Buffer {
  if (cmd.inline) return Buffer.from(`${cmd.args.join(' ')}\r\n`, 'latin1')
  const parts = [`*${cmd.args.length}\r\n`]
  for (const a of cmd.args) parts.push(`$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`)
  return Buffer.from(parts.join(''), 'latin1')
}

/** Two connections to a RESP server on `port`; with `resp3`, each first says HELLO 3 (its reply, which names the server, is not compared). */
async function respTarget(name: string, port: number, host = '127.0.0.1', cleanup: () => Promise<void> = async () => undefined, resp3 = false): Promise<Target> {
  const conns = [await RespClient.connect(port, host), await RespClient.connect(port, host)]
  if (resp3) {
    for (const c of conns) {
      const hello = await c.call(['HELLO', '3'])
      if (hello.value.type !== 'map') throw new Error(`${name}: HELLO 3 replied ${JSON.stringify(hello.raw.toString('latin1'))}`)
    }
  }
  return {
    name,
    async run(step) {
      const c = conns[step.conn] as RespClient
      c.sendRaw(Buffer.concat(step.cmds.map(frame)))
      const out: Buffer[] = []
      for (let i = 0; i < step.cmds.length; i++) out.push((await c.read()).raw)
      return out
    },
    async close() {
      for (const c of conns) c.destroy()
      await cleanup()
    },
  }
}

/** A reply as RESP2 bytes (latin1), error lines with CR and LF turned to spaces as Redis does. */
function encodeReply(r: Reply): string {
  switch (r.type) {
    case 'status':
      return `+${r.value}\r\n`
    case 'error':
      return `-${`${r.code} ${r.message}`.replace(/[\r\n]/g, ' ')}\r\n`
    case 'integer':
      return `:${r.value}\r\n`
    case 'bulk':
      return r.value === null ? '$-1\r\n' : `$${Buffer.byteLength(r.value, 'latin1')}\r\n${r.value}\r\n`
    case 'array':
      return r.value === null ? '*-1\r\n' : `*${r.value.length}\r\n${r.value.map(encodeReply).join('')}`
  }
}

/** The command language in process: two sessions over one in-memory Store. */
async function sessionTarget(): Promise<Target> {
  const store = await Store.open()
  const sessions: Session[] = [createSession(store), createSession(store)]
  return {
    name: 'kvstore command language (createSession, in process)',
    async run(step) {
      const s = sessions[step.conn] as Session
      const out: Buffer[] = []
      for (const cmd of step.cmds) out.push(Buffer.from(encodeReply(await s.execute(cmd.args)), 'latin1'))
      return out
    },
    close: () => store.close(),
  }
}

// --------------------------------------------------------------------- the comparison

/** A reply made comparable: unordered parts sorted, TTLs pulled out to compare with a tolerance. */
interface Normal {
  bytes: string
  ttls: { value: number; toleranceMs: number; unitMs: number }[]
}

function reencode(v: RespValue): string {
  switch (v.type) {
    case 'simple':
      return `+${v.value}\r\n`
    case 'error':
      return `-${v.value}\r\n`
    case 'integer':
      return `:${v.value}\r\n`
    case 'bulk':
      return v.value === null ? '$-1\r\n' : `$${v.value.length}\r\n${v.value.toString('latin1')}\r\n`
    case 'array':
      return v.value === null ? '*-1\r\n' : `*${v.value.length}\r\n${v.value.map(reencode).join('')}`
    case 'null':
      return '_\r\n'
    case 'double':
      return `,${v.value}\r\n`
    case 'boolean':
      return `#${v.value ? 't' : 'f'}\r\n`
    case 'bignum':
      return `(${v.value}\r\n`
    case 'verbatim':
      return `=${v.value.length + 4}\r\n${v.format}:${v.value.toString('latin1')}\r\n`
    case 'blob-error':
      return `!${v.value.length}\r\n${v.value.toString('latin1')}\r\n`
    case 'set':
    case 'push':
      return `${v.type === 'set' ? '~' : '>'}${v.value.length}\r\n${v.value.map(reencode).join('')}`
    case 'map':
    case 'attribute':
      return `${v.type === 'map' ? '%' : '|'}${v.value.length}\r\n${v.value.map(([k, x]) => reencode(k) + reencode(x)).join('')}`
  }
}

/** Normalize `raw`, the reply to `args` (for EXEC: `queued` are the commands it ran). */
function normalize(args: string[], raw: Buffer, queued: string[][] | undefined, out: Normal): string {
  const parsed = parseReply(raw)
  if (parsed === undefined || parsed.end !== raw.length) return `!unparsable ${raw.toString('latin1')}`
  const v = parsed.value
  const name = (args[0] ?? '').toUpperCase()
  if (name === 'EXEC' && v.type === 'array' && v.value !== null && queued !== undefined && queued.length === v.value.length) {
    return `*${v.value.length}\r\n${v.value.map((x, i) => normalize(queued[i] as string[], Buffer.from(reencode(x), 'latin1'), undefined, out)).join('')}`
  }
  if ((name === 'TTL' || name === 'PTTL') && v.type === 'integer' && v.value >= 0n) {
    out.ttls.push({ value: Number(v.value), toleranceMs: 1000, unitMs: name === 'TTL' ? 1000 : 1 })
    return `:${name}\r\n`
  }
  if (name === 'KEYS' && v.type === 'array' && v.value !== null) return `*${v.value.length}\r\n${v.value.map(reencode).sort().join('')}`
  if (name === 'HGETALL' && v.type === 'array' && v.value !== null) {
    const pairs: string[] = []
    for (let i = 0; i < v.value.length; i += 2) pairs.push(reencode(v.value[i] as RespValue) + reencode(v.value[i + 1] as RespValue))
    return `*${v.value.length}\r\n${pairs.sort().join('')}`
  }
  if (name === 'HGETALL' && v.type === 'map') return `%${v.value.length}\r\n${v.value.map(([k, x]) => reencode(k) + reencode(x)).sort().join('')}`
  return raw.toString('latin1')
}

function comparable(args: string[], raw: Buffer, queued: string[][] | undefined): Normal {
  const n: Normal = { bytes: '', ttls: [] }
  n.bytes = normalize(args, raw, queued, n)
  return n
}

function same(a: Normal, b: Normal): boolean {
  if (a.bytes !== b.bytes || a.ttls.length !== b.ttls.length) return false
  return a.ttls.every((t, i) => Math.abs(t.value - (b.ttls[i] as Normal['ttls'][number]).value) * t.unitMs <= t.toleranceMs)
}

interface Difference {
  step: number
  conn: number
  command: string[]
  inline: boolean
  expected: string
  actual: string
  /** The last commands before it that named its key, with redis-server's replies. */
  before: string[]
}

/** Commands kept per key, to show what led to a difference. */
const HISTORY = 12

/**
 * Run the stream against `reference` and `candidate` step by step, comparing each reply.
 * The MULTI queue of each connection is followed from the reference's replies, so an EXEC
 * reply is normalized command by command.
 */
async function compare(steps: Step[], reference: Target, candidate: Target): Promise<{ commands: number; differences: Difference[] }> {
  const queues: (string[][] | undefined)[] = [undefined, undefined]
  const differences: Difference[] = []
  const history = new Map<string, string[]>()
  const watching: string[][] = [[], []]
  let commands = 0
  for (const [i, step] of steps.entries()) {
    const expected = await reference.run(step)
    const actual = await candidate.run(step)
    for (const [j, cmd] of step.cmds.entries()) {
      commands++
      const name = (cmd.args[0] ?? '').toUpperCase()
      const e = expected[j] as Buffer
      const a = actual[j] as Buffer
      const queue = queues[step.conn]
      if (!same(comparable(cmd.args, e, queue), comparable(cmd.args, a, queue))) {
        // Transaction commands: what happened on the connection; others: to the key.
        const about = /^(MULTI|EXEC|DISCARD|WATCH|UNWATCH)$/.test(name) ? `#${step.conn}` : (cmd.args[1] ?? '')
        const before = [...(history.get(about) ?? [])]
        if (name === 'EXEC') for (const k of watching[step.conn] ?? []) before.push(`  watched ${JSON.stringify(k)}:`, ...(history.get(k) ?? []))
        differences.push({ step: i, conn: step.conn, command: cmd.args, inline: cmd.inline, expected: e.toString('latin1'), actual: a.toString('latin1'), before })
      }
      for (const k of new Set([...cmd.args.slice(1), `#${step.conn}`])) {
        const h = history.get(k) ?? []
        h.push(`step ${i}, connection ${step.conn}: ${JSON.stringify(cmd.args)} -> ${JSON.stringify(e.toString('latin1'))}`)
        if (h.length > HISTORY) h.shift()
        history.set(k, h)
      }
      // Follow the reference's MULTI state on this connection.
      const text = e.toString('latin1')
      if (name === 'WATCH' && text === '+OK\r\n') watching[step.conn] = [...(watching[step.conn] ?? []), ...cmd.args.slice(1)]
      if (name === 'UNWATCH' && text === '+OK\r\n') watching[step.conn] = []
      if (name === 'EXEC' || name === 'DISCARD') watching[step.conn] = []
      if (name === 'MULTI' && text === '+OK\r\n') queues[step.conn] = []
      else if ((name === 'EXEC' || name === 'DISCARD') && !text.startsWith('-ERR')) queues[step.conn] = undefined
      else if (text === '+QUEUED\r\n') queue?.push(cmd.args)
    }
  }
  return { commands, differences }
}

function report(title: string, r: { commands: number; differences: Difference[] }): string {
  const lines = [`differential ${title}: ${r.commands.toLocaleString('en')} commands compared, ${r.differences.length} differences (seed ${SEED})`]
  for (const d of r.differences.slice(0, SHOW)) {
    lines.push(`  step ${d.step}, connection ${d.conn}${d.inline ? ', inline' : ''}: ${JSON.stringify(d.command)}`)
    lines.push(`    redis-server: ${JSON.stringify(d.expected)}`)
    lines.push(`    kvstore:      ${JSON.stringify(d.actual)}`)
    if (d.before.length > 0) lines.push(`    after (redis-server's replies):\n${d.before.map((b) => `      ${b}`).join('\n')}`)
  }
  if (r.differences.length > SHOW) lines.push(`  … and ${r.differences.length - SHOW} more`)
  return lines.join('\n')
}

async function against(candidate: () => Promise<Target>, title: string, text = false, resp3 = false): Promise<void> {
  const steps = stream(SEED, COMMANDS, text)
  let redis: RedisServer | undefined
  let ref: Target | undefined
  let cand: Target | undefined
  try {
    redis = await startRedisServer()
    ref = await respTarget(`redis-server ${redis.version}`, redis.port, redis.host, async () => undefined, resp3)
    cand = await candidate()
    const r = await compare(steps, ref, cand)
    const text = report(title, r)
    console.log(text)
    expect(r.commands).toBe(COMMANDS)
    expect(r.differences.length, text).toBe(0)
  } finally {
    await ref?.close()
    await cand?.close()
    await redis?.stop()
  }
}

/** createServer over an in-memory Store, listening on a free loopback port. */
async function serverTarget(resp3 = false): Promise<Target> {
  const store = await Store.open()
  const server = createServer(store)
  try {
    const { port, host } = await server.listen(0, '127.0.0.1')
    const cleanup = async () => {
      await server.close()
      await store.close()
    }
    return await respTarget('kvstore createServer (in process)', port, host, cleanup, resp3)
  } catch (err) {
    await server.close()
    await store.close()
    throw err
  }
}

/** `kvstore serve` from source, as a child process with its own temporary directory. */
async function cliTarget(): Promise<Target> {
  const child = await startKvstoreServer({ sync: 'never' })
  try {
    return await respTarget('kvstore serve (child process)', child.port, child.host, async () => {
      const code = await child.stop()
      if (code !== 0) throw new Error(`kvstore serve exited with ${code}: ${child.log()}`)
    })
  } catch (err) {
    await child.kill()
    throw err
  }
}

describe('the same random command stream to redis-server and to kvstore, reply bytes compared', () => {
  it('finds 0 differences between two redis-servers (the harness itself)', async () => {
    let other: RedisServer | undefined
    await against(async () => {
      other = await startRedisServer()
      const server = other
      return respTarget('second redis-server', server.port, server.host, () => server.stop())
    }, 'redis-server vs redis-server')
  }, 120_000)

  it('finds 0 differences in the command language (createSession in process, replies as RESP2)', async () => {
    await against(sessionTarget, 'redis-server vs kvstore createSession')
  }, 120_000)

  it('finds 0 differences over the wire from createServer (in process, in-memory store)', async () => {
    await against(() => serverTarget(), 'redis-server vs kvstore createServer', true)
  }, 120_000)

  it('finds 0 differences over the wire in RESP3 (HELLO 3 on every connection)', async () => {
    await against(() => serverTarget(true), 'redis-server vs kvstore createServer, RESP3', true, true)
  }, 120_000)

  it('finds 0 differences over the wire from kvstore serve (child process, directory store)', async () => {
    await against(cliTarget, 'redis-server vs kvstore serve', true)
  }, 120_000)
})
