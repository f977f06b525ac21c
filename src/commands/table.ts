import { StoreError } from '../errors.js'
import type { SetOptions, Store } from '../store.js'
import { array, bulk, error, integer, NIL, OK, status, type Reply } from './reply.js'

/**
 * The store methods the command language calls: a `Store`, or any object with the same
 * API (an `EtcdStore`). Structural, so a store need not be the `Store` class.
 */
export type CommandStore = Pick<
  Store<unknown>,
  | 'get' | 'set' | 'delete' | 'has' | 'keys' | 'scan' | 'batch' | 'count' | 'clear' | 'type' | 'version'
  | 'incr' | 'decr' | 'ttl' | 'expire' | 'persist'
  | 'lpush' | 'rpush' | 'lpop' | 'rpop' | 'popMany' | 'lrange' | 'llen' | 'lindex' | 'lset' | 'ltrim'
  | 'hset' | 'hget' | 'hdel' | 'hgetall' | 'hlen' | 'hexists'
  | 'snapshot' | 'load' | 'compact' | 'stats'
> & Partial<Pick<Store<unknown>, 'configure'>>

/** What a command handler may use. */
export interface CommandContext {
  readonly store: CommandStore
}

/** One entry of the command table. */
export interface CommandSpec {
  /** Upper-case name. */
  readonly name: string
  /**
   * Number of words including the name, Redis style: `n` exactly, `-n` at least n.
   */
  readonly arity: number
  /** `write` changes data; `readonly` does not; `admin` acts on files or the whole store; `session` is handled by the session. */
  readonly flags: readonly ('write' | 'readonly' | 'admin' | 'session')[]
  readonly syntax: string
  readonly summary: string
  /** Run with the words after the name. Session commands have no handler here. */
  readonly run?: (ctx: CommandContext, args: string[]) => Promise<Reply>
}

/** Thrown by handlers for Redis `ERR syntax error`-style replies. */
class ReplyError extends Error {
  readonly reply: Reply
  constructor(reply: Reply) {
    super(reply.type === 'error' ? reply.message : 'error')
    this.reply = reply
  }
}

function syntaxError(): never {
  throw new ReplyError(error('ERR', 'syntax error'))
}

function notInteger(): never {
  throw new ReplyError(error('ERR', 'value is not an integer or out of range', 'KV_NOT_INTEGER'))
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

/**
 * Parse a Redis integer argument: canonical decimal (no sign but `-`, no leading zeros, not
 * `-0`) within int64, as Redis's string2ll reads it; `ERR value is not an integer or out of
 * range` otherwise.
 */
function int64(word: string): bigint {
  if (!/^(0|-?[1-9]\d{0,18})$/.test(word)) notInteger()
  const n = BigInt(word)
  if (n < INT64_MIN || n > INT64_MAX) notInteger()
  return n
}

/** An integer argument that must be a safe integer (kvstore's integers are; int64 beyond that is out of range). */
function int(word: string): number {
  const n = int64(word)
  if (n < BigInt(Number.MIN_SAFE_INTEGER) || n > BigInt(Number.MAX_SAFE_INTEGER)) notInteger()
  return Number(n)
}

/** A list index: any int64, clamped to the safe range (no list is that long, so the meaning is kept). */
function index(word: string): number {
  const n = int64(word)
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER
  if (n < BigInt(Number.MIN_SAFE_INTEGER)) return Number.MIN_SAFE_INTEGER
  return Number(n)
}

/** Render any stored value as the string a Redis client shows. */
export function show(v: unknown): string {
  if (typeof v === 'string') return v
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v)
  if (typeof v === 'boolean' || v === null) return String(v)
  if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1')
  return JSON.stringify(v)
}

function bulkOf(v: unknown): Reply {
  return v === undefined ? NIL : bulk(show(v))
}

/** Map an exception to an error reply (Redis prefixes; our code kept in `kvCode`). */
export function toErrorReply(err: unknown): Reply {
  if (err instanceof ReplyError) return err.reply
  if (err instanceof StoreError) {
    switch (err.code) {
      case 'KV_WRONG_TYPE':
        return error('WRONGTYPE', 'Operation against a key holding the wrong kind of value', err.code)
      case 'KV_NOT_INTEGER':
        return error('ERR', 'value is not an integer or out of range', err.code)
      case 'KV_OUT_OF_MEMORY':
        // Redis's reply under maxmemory with noeviction; clients know the OOM prefix.
        return error('OOM', "command not allowed when used memory > 'maxmemory'.", err.code)
      case 'KV_READ_ONLY':
        // What a Redis replica replies to a write; clients know the READONLY prefix.
        return error('READONLY', "You can't write against a read only replica.", err.code)
      default:
        return error('ERR', err.message, err.code)
    }
  }
  return error('ERR', err instanceof Error ? err.message : String(err))
}

function ttlMs(word: string, unitMs: number, cmd: string): number {
  const n = int(word)
  if (n <= 0) throw new ReplyError(error('ERR', `invalid expire time in '${cmd}' command`))
  return n * unitMs
}

async function set(ctx: CommandContext, args: string[]): Promise<Reply> {
  const [key, value, ...rest] = args as [string, string, ...string[]]
  const opts: SetOptions = {}
  let get = false
  // As in Redis, the options are read first and the expire time checked after: a syntax
  // error anywhere wins over a bad number.
  let expire: { word: string; unitMs: number } | undefined
  for (let i = 0; i < rest.length; i++) {
    const o = (rest[i] as string).toUpperCase()
    const unitMs = o === 'EX' ? 1000 : 1
    // Repeating the same one (EX 1 EX 2) is allowed, the last wins; EX with PX is not.
    if ((o === 'EX' || o === 'PX') && i + 1 < rest.length && (expire === undefined || expire.unitMs === unitMs) && !opts.keepTtl) {
      expire = { word: rest[++i] as string, unitMs }
    } else if (o === 'NX' && !opts.ifExists) opts.ifNotExists = true
    else if (o === 'XX' && !opts.ifNotExists) opts.ifExists = true
    else if (o === 'KEEPTTL' && expire === undefined) opts.keepTtl = true
    else if (o === 'GET') get = true
    else syntaxError()
  }
  if (expire !== undefined) opts.ttl = ttlMs(expire.word, expire.unitMs, 'set')
  const old = get ? await ctx.store.get(key) : undefined
  const written = await ctx.store.set(key, value, opts)
  if (get) return bulkOf(old)
  return written ? OK : NIL
}

async function rangeCmd(ctx: CommandContext, args: string[]): Promise<Reply> {
  const o: { prefix?: string; gt?: string; gte?: string; lt?: string; lte?: string; reverse?: boolean; limit?: number } = {}
  for (let i = 0; i < args.length; i++) {
    const w = (args[i] as string).toUpperCase()
    const next = (): string => {
      if (i + 1 >= args.length) syntaxError()
      return args[++i] as string
    }
    if (w === 'PREFIX') o.prefix = next()
    else if (w === 'GT') o.gt = next()
    else if (w === 'GTE') o.gte = next()
    else if (w === 'LT') o.lt = next()
    else if (w === 'LTE') o.lte = next()
    else if (w === 'REV') o.reverse = true
    else if (w === 'LIMIT') {
      const n = int(next())
      if (n < 0) notInteger()
      o.limit = n
    } else syntaxError()
  }
  const out: Reply[] = []
  for await (const [k, v] of ctx.store.scan(o)) out.push(bulk(k), bulk(show(v)))
  return array(out)
}

/** Parameters CONFIG knows, with how to read each from the store's stats. */
const CONFIG_PARAMS: readonly [string, (st: ReturnType<CommandStore['stats']>) => string][] = [
  ['maxmemory', (st) => String(st.maxMemoryBytes ?? 0)],
  ['maxmemory-policy', (st) => st.evictionPolicy ?? 'noeviction'],
]

/** Redis memory units (`memtoll`): b, k = 1000, kb = 1024, m, mb, g, gb. */
const MEMORY_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, k: 1e3, kb: 1024, m: 1e6, mb: 1024 ** 2, g: 1e9, gb: 1024 ** 3 }

function configCmd(ctx: CommandContext, args: string[]): Promise<Reply> | Reply {
  const sub = (args[0] as string).toUpperCase()
  if (sub === 'GET') {
    if (args.length < 2) throw new ReplyError(error('ERR', "wrong number of arguments for 'config|get' command"))
    const st = ctx.store.stats()
    const out: Reply[] = []
    for (const [name, read] of CONFIG_PARAMS) {
      // Exact names, and the trailing-* patterns clients use (`CONFIG GET maxmemory*`).
      const hit = args.slice(1).some((p) => {
        const q = p.toLowerCase()
        return q === name || q === '*' || (q.endsWith('*') && name.startsWith(q.slice(0, -1)))
      })
      if (hit) out.push(bulk(name), bulk(read(st)))
    }
    return array(out)
  }
  if (sub === 'SET') return configSet(ctx, args.slice(1))
  throw new ReplyError(error('ERR', `unknown subcommand '${args[0] as string}'. Try CONFIG GET or CONFIG SET.`))
}

async function configSet(ctx: CommandContext, pairs: string[]): Promise<Reply> {
  if (pairs.length === 0 || pairs.length % 2 !== 0) throw new ReplyError(error('ERR', "wrong number of arguments for 'config|set' command"))
  const options: { maxMemoryBytes?: number; evictionPolicy?: string } = {}
  for (let i = 0; i < pairs.length; i += 2) {
    const name = (pairs[i] as string).toLowerCase()
    const value = pairs[i + 1] as string
    if (name === 'maxmemory') {
      const m = /^(\d{1,16})([a-z]*)$/i.exec(value)
      const unit = m === null ? undefined : MEMORY_UNITS[(m[2] as string).toLowerCase()]
      const bytes = m === null || unit === undefined ? Number.NaN : Number(m[1]) * unit
      if (!Number.isSafeInteger(bytes)) throw new ReplyError(error('ERR', "CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"))
      options.maxMemoryBytes = bytes
    } else if (name === 'maxmemory-policy') {
      options.evictionPolicy = value.toLowerCase()
    } else {
      throw new ReplyError(error('ERR', `Unknown option or number of arguments for CONFIG SET - '${pairs[i] as string}'`))
    }
  }
  const store = ctx.store
  if (store.configure === undefined) throw new ReplyError(error('ERR', 'CONFIG SET is not supported by this store (it has no memory budget)'))
  await store.configure(options as Parameters<NonNullable<CommandStore['configure']>>[0])
  return OK
}

function infoText(ctx: CommandContext): string {
  const st = ctx.store.stats()
  const rec = st.recovery
  const lines = [
    '# Keyspace',
    `keys:${st.keys}`,
    `expiring_keys:${st.expiringKeys}`,
    `expired_removed:${st.expiredRemoved}`,
    // Redis's names; evicted_keys is in Redis's Stats section, kept here beside the budget.
    '# Memory',
    `used_memory:${st.memoryBytes ?? 0}`,
    `maxmemory:${st.maxMemoryBytes ?? 0}`,
    `maxmemory_policy:${st.evictionPolicy ?? 'noeviction'}`,
    `evicted_keys:${st.evictedKeys ?? 0}`,
    '# Persistence',
    `mode:${st.mode}`,
    `path:${st.path ?? ''}`,
    `sync:${st.sync ?? ''}`,
    `seq:${st.seq}`,
    `wal_segment:${st.walSegment ?? ''}`,
    `wal_bytes:${st.walBytes}`,
    `snapshots:${st.snapshots}`,
    `compactions:${st.compactions}`,
    `failure:${st.failure ?? ''}`,
  ]
  if (rec !== undefined) {
    lines.push(
      '# Recovery',
      `recovery_snapshot:${rec.snapshot ?? ''}`,
      `recovery_snapshot_seq:${rec.snapshotSeq}`,
      `recovery_segments:${rec.segments}`,
      `recovery_records:${rec.records}`,
      `recovery_bytes:${rec.bytes}`,
      `recovery_truncated_tail_bytes:${rec.truncatedTailBytes}`,
      `recovery_broken_files:${rec.brokenFiles.join(',')}`,
      `recovery_corruption:${rec.corruption === undefined ? '' : `${rec.corruption.file}@${rec.corruption.offset}: ${rec.corruption.reason}`}`,
      `recovery_time_ms:${rec.timeMs.toFixed(1)}`,
    )
  }
  return lines.join('\n')
}

const specs: CommandSpec[] = [
  { name: 'PING', arity: -1, flags: ['readonly'], syntax: 'PING [message]', summary: 'Reply PONG, or the message.', run: async (_c, a) => {
    if (a.length > 1) return error('ERR', "wrong number of arguments for 'ping' command")
    return a.length > 0 ? bulk(a[0] as string) : status('PONG')
  } },
  { name: 'ECHO', arity: 2, flags: ['readonly'], syntax: 'ECHO message', summary: 'Reply the message.', run: async (_c, a) => bulk(a[0] as string) },
  { name: 'SET', arity: -3, flags: ['write'], syntax: 'SET key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]', summary: 'Store a string value.', run: set },
  { name: 'GET', arity: 2, flags: ['readonly'], syntax: 'GET key', summary: 'Value of key, or (nil).', run: async (c, a) => bulkOf(await c.store.get(a[0] as string)) },
  { name: 'DEL', arity: -2, flags: ['write'], syntax: 'DEL key [key ...]', summary: 'Delete keys; reply how many existed.', run: async (c, a) => integer((await Promise.all(a.map((k) => c.store.delete(k)))).filter(Boolean).length) },
  { name: 'DELETE', arity: 2, flags: ['write'], syntax: 'DELETE key', summary: 'Delete a key; reply OK (DEL replies with a count).', run: async (c, a) => (await c.store.delete(a[0] as string), OK) },
  { name: 'EXISTS', arity: -2, flags: ['readonly'], syntax: 'EXISTS key [key ...]', summary: 'How many of the keys exist (repeats count).', run: async (c, a) => integer((await Promise.all(a.map((k) => c.store.has(k)))).filter(Boolean).length) },
  { name: 'KEYS', arity: 2, flags: ['readonly'], syntax: 'KEYS pattern', summary: 'Keys matching a glob (* ? [abc] [^a] [a-z] \\x), in key order.', run: async (c, a) => array((await c.store.keys(a[0] as string)).map((k) => bulk(k)), true) },
  { name: 'MGET', arity: -2, flags: ['readonly'], syntax: 'MGET key [key ...]', summary: 'Values of several keys.', run: async (c, a) => array(await Promise.all(a.map(async (k) => bulkOf(await c.store.get(k).catch(() => undefined))))) },
  {
    name: 'MSET', arity: -3, flags: ['write'], syntax: 'MSET key value [key value ...]', summary: 'Set several keys atomically.',
    run: async (c, a) => {
      if (a.length % 2 !== 0) throw new ReplyError(error('ERR', "wrong number of arguments for 'mset' command"))
      const ops = []
      for (let i = 0; i < a.length; i += 2) ops.push({ type: 'set' as const, key: a[i] as string, value: a[i + 1] as string })
      await c.store.batch(ops)
      return OK
    },
  },
  { name: 'INCR', arity: 2, flags: ['write'], syntax: 'INCR key', summary: 'Add 1 to an integer.', run: async (c, a) => integer(await c.store.incr(a[0] as string)) },
  { name: 'DECR', arity: 2, flags: ['write'], syntax: 'DECR key', summary: 'Subtract 1 from an integer.', run: async (c, a) => integer(await c.store.decr(a[0] as string)) },
  { name: 'INCRBY', arity: 3, flags: ['write'], syntax: 'INCRBY key increment', summary: 'Add an integer.', run: async (c, a) => integer(await c.store.incr(a[0] as string, int(a[1] as string))) },
  { name: 'DECRBY', arity: 3, flags: ['write'], syntax: 'DECRBY key decrement', summary: 'Subtract an integer.', run: async (c, a) => integer(await c.store.decr(a[0] as string, int(a[1] as string))) },
  { name: 'EXPIRE', arity: 3, flags: ['write'], syntax: 'EXPIRE key seconds', summary: 'Set a time to live in seconds; reply 1, or 0 if missing.', run: async (c, a) => integer((await expireCmd(c, a, 1000)) ? 1 : 0) },
  { name: 'PEXPIRE', arity: 3, flags: ['write'], syntax: 'PEXPIRE key milliseconds', summary: 'Set a time to live in milliseconds.', run: async (c, a) => integer((await expireCmd(c, a, 1)) ? 1 : 0) },
  { name: 'TTL', arity: 2, flags: ['readonly'], syntax: 'TTL key', summary: 'Seconds to live; -1 no expiry; -2 missing.', run: async (c, a) => { const t = await c.store.ttl(a[0] as string); return integer(t < 0 ? t : Math.round(t / 1000)) } },
  { name: 'PTTL', arity: 2, flags: ['readonly'], syntax: 'PTTL key', summary: 'Milliseconds to live; -1 no expiry; -2 missing.', run: async (c, a) => integer(await c.store.ttl(a[0] as string)) },
  { name: 'PERSIST', arity: 2, flags: ['write'], syntax: 'PERSIST key', summary: 'Remove the expiry; reply 1 if there was one.', run: async (c, a) => integer((await c.store.persist(a[0] as string)) ? 1 : 0) },
  { name: 'LPUSH', arity: -3, flags: ['write'], syntax: 'LPUSH key element [element ...]', summary: 'Push at the head; reply the length.', run: async (c, a) => integer(await c.store.lpush(a[0] as string, ...a.slice(1))) },
  { name: 'RPUSH', arity: -3, flags: ['write'], syntax: 'RPUSH key element [element ...]', summary: 'Push at the tail; reply the length.', run: async (c, a) => integer(await c.store.rpush(a[0] as string, ...a.slice(1))) },
  { name: 'LPOP', arity: -2, flags: ['write'], syntax: 'LPOP key [count]', summary: 'Pop from the head.', run: async (c, a) => popCmd(c, a, true) },
  { name: 'RPOP', arity: -2, flags: ['write'], syntax: 'RPOP key [count]', summary: 'Pop from the tail.', run: async (c, a) => popCmd(c, a, false) },
  { name: 'LRANGE', arity: 4, flags: ['readonly'], syntax: 'LRANGE key start stop', summary: 'Elements start..stop (negative from the end).', run: async (c, a) => array((await c.store.lrange(a[0] as string, index(a[1] as string), index(a[2] as string))).map((v) => bulk(show(v)))) },
  { name: 'LLEN', arity: 2, flags: ['readonly'], syntax: 'LLEN key', summary: 'Length of a list.', run: async (c, a) => integer(await c.store.llen(a[0] as string)) },
  { name: 'LINDEX', arity: 3, flags: ['readonly'], syntax: 'LINDEX key index', summary: 'Element at index.', run: async (c, a) => {
    // Redis looks the key up before it reads the index: a missing key is (nil) and another
    // type WRONGTYPE, whatever the index.
    const t = await c.store.type(a[0] as string)
    if (t === undefined) return NIL
    if (t !== 'list') return error('WRONGTYPE', 'Operation against a key holding the wrong kind of value', 'KV_WRONG_TYPE')
    return bulkOf(await c.store.lindex(a[0] as string, index(a[1] as string)))
  } },
  {
    name: 'LSET', arity: 4, flags: ['write'], syntax: 'LSET key index element', summary: 'Replace the element at index.',
    run: async (c, a) => {
      const key = a[0] as string
      if (!(await c.store.has(key))) return error('ERR', 'no such key')
      const len = await c.store.llen(key)
      const i = index(a[1] as string)
      if (i >= len || i < -len) return error('ERR', 'index out of range')
      await c.store.lset(key, i, a[2] as string)
      return OK
    },
  },
  { name: 'LTRIM', arity: 4, flags: ['write'], syntax: 'LTRIM key start stop', summary: 'Keep only elements start..stop.', run: async (c, a) => (await c.store.ltrim(a[0] as string, index(a[1] as string), index(a[2] as string)), OK) },
  {
    name: 'HSET', arity: -4, flags: ['write'], syntax: 'HSET key field value [field value ...]', summary: 'Set hash fields; reply how many were new.',
    run: async (c, a) => {
      if ((a.length - 1) % 2 !== 0) throw new ReplyError(error('ERR', "wrong number of arguments for 'hset' command"))
      const fields = new Map<string, string>()
      for (let i = 1; i < a.length; i += 2) fields.set(a[i] as string, a[i + 1] as string)
      return integer(await c.store.hset(a[0] as string, fields))
    },
  },
  { name: 'HGET', arity: 3, flags: ['readonly'], syntax: 'HGET key field', summary: 'Value of a hash field.', run: async (c, a) => bulkOf(await c.store.hget(a[0] as string, a[1] as string)) },
  { name: 'HDEL', arity: -3, flags: ['write'], syntax: 'HDEL key field [field ...]', summary: 'Delete hash fields; reply how many existed.', run: async (c, a) => integer(await c.store.hdel(a[0] as string, ...a.slice(1))) },
  {
    name: 'HGETALL', arity: 2, flags: ['readonly'], syntax: 'HGETALL key', summary: 'All fields and values of a hash.',
    run: async (c, a) => {
      const out: Reply[] = []
      for (const [f, v] of await c.store.hgetall(a[0] as string)) out.push(bulk(f), bulk(show(v)))
      return array(out)
    },
  },
  { name: 'HLEN', arity: 2, flags: ['readonly'], syntax: 'HLEN key', summary: 'Number of fields in a hash.', run: async (c, a) => integer(await c.store.hlen(a[0] as string)) },
  { name: 'HEXISTS', arity: 3, flags: ['readonly'], syntax: 'HEXISTS key field', summary: 'Whether a hash has a field (1 or 0).', run: async (c, a) => integer((await c.store.hexists(a[0] as string, a[1] as string)) ? 1 : 0) },
  {
    name: 'TYPE', arity: 2, flags: ['readonly'], syntax: 'TYPE key', summary: 'string, list, hash, or none (json and bytes values show as string).',
    run: async (c, a) => {
      const t = await c.store.type(a[0] as string)
      return status(t === undefined ? 'none' : t === 'list' || t === 'hash' ? t : 'string')
    },
  },
  { name: 'DBSIZE', arity: 1, flags: ['readonly'], syntax: 'DBSIZE', summary: 'Number of keys.', run: async (c) => integer(await c.store.count()) },
  { name: 'FLUSHDB', arity: 1, flags: ['write'], syntax: 'FLUSHDB', summary: 'Delete every key.', run: async (c) => (await c.store.clear(), OK) },
  { name: 'RANGE', arity: -1, flags: ['readonly'], syntax: 'RANGE [PREFIX p] [GT|GTE k] [LT|LTE k] [REV] [LIMIT n]', summary: 'Ordered key/value pairs of a range or prefix (kvstore).', run: rangeCmd },
  { name: 'SNAPSHOT', arity: -1, flags: ['admin'], syntax: 'SNAPSHOT [path]', summary: "Write a snapshot (the store's file, or path).", run: async (c, a) => {
    if (a.length > 1) syntaxError()
    const r = await c.store.snapshot(a[0])
    return status(`Saved snapshot to ${a[0] ?? displayPath(c, r.path)}`)
  } },
  { name: 'LOAD', arity: 2, flags: ['admin'], syntax: 'LOAD path', summary: 'Replace the contents with a snapshot file.', run: async (c, a) => {
    const r = await c.store.load(a[0] as string)
    return status(`Loaded ${r.entries} keys from ${a[0] as string}`)
  } },
  { name: 'COMPACT', arity: 1, flags: ['admin'], syntax: 'COMPACT', summary: 'Snapshot and drop the WAL it covers.', run: async (c) => {
    const r = await c.store.compact()
    return status(`Compacted ${r.entries} keys (seq ${r.seq})`)
  } },
  { name: 'INFO', arity: -1, flags: ['readonly'], syntax: 'INFO', summary: 'Counters, persistence and recovery report.', run: async (c) => bulk(infoText(c)) },
  { name: 'CONFIG', arity: -2, flags: ['admin'], syntax: 'CONFIG GET parameter [parameter ...] | CONFIG SET parameter value [parameter value ...]', summary: 'Read or change maxmemory and maxmemory-policy (Redis units: 64mb, 1gb).', run: async (c, a) => configCmd(c, a) },
  { name: 'MULTI', arity: 1, flags: ['session'], syntax: 'MULTI', summary: 'Start queuing commands for EXEC.' },
  { name: 'EXEC', arity: 1, flags: ['session'], syntax: 'EXEC', summary: 'Run the queued commands; (nil) if a watched key changed.' },
  { name: 'DISCARD', arity: 1, flags: ['session'], syntax: 'DISCARD', summary: 'Drop the queued commands.' },
  { name: 'WATCH', arity: -2, flags: ['session'], syntax: 'WATCH key [key ...]', summary: 'Abort the next EXEC if any of these keys change.' },
  { name: 'UNWATCH', arity: 1, flags: ['session'], syntax: 'UNWATCH', summary: 'Forget watched keys.' },
  { name: 'HELP', arity: -1, flags: ['session'], syntax: 'HELP [command]', summary: 'List commands, or describe one.' },
  { name: 'EXIT', arity: 1, flags: ['session'], syntax: 'EXIT', summary: 'Close the store and leave.' },
  { name: 'QUIT', arity: 1, flags: ['session'], syntax: 'QUIT', summary: 'Same as EXIT.' },
]

function displayPath(c: CommandContext, path: string): string {
  const st = c.store.stats()
  // The store's own file is shown as the user gave it, relative to the working directory.
  if (st.mode === 'file' && st.path === path) {
    const rel = path.startsWith(`${process.cwd()}/`) ? path.slice(process.cwd().length + 1) : path
    return rel
  }
  return path
}

async function expireCmd(c: CommandContext, a: string[], unit: number): Promise<boolean> {
  const n = int(a[1] as string)
  if (n <= 0) return c.store.delete(a[0] as string)
  return c.store.expire(a[0] as string, n * unit)
}

async function popCmd(c: CommandContext, a: string[], left: boolean): Promise<Reply> {
  if (a.length > 2) return error('ERR', `wrong number of arguments for '${left ? 'lpop' : 'rpop'}' command`)
  if (a.length === 1) return bulkOf(await (left ? c.store.lpop(a[0] as string) : c.store.rpop(a[0] as string)))
  // Redis reads the count as a positive int64 and gives this one message for anything else.
  let n: number
  try {
    n = index(a[1] as string)
  } catch {
    n = -1
  }
  if (n < 0) return error('ERR', 'value is out of range, must be positive')
  if (!(await c.store.has(a[0] as string))) return array(null)
  return array((await c.store.popMany(a[0] as string, n, left)).map((v) => bulk(show(v))))
}

/** The command table, by upper-case name. */
export const commands: ReadonlyMap<string, CommandSpec> = new Map(specs.map((s) => [s.name, s]))

/** Check arity; returns an error reply or undefined. */
export function checkArity(spec: CommandSpec, words: number): Reply | undefined {
  const ok = spec.arity >= 0 ? words === spec.arity : words >= -spec.arity
  return ok ? undefined : error('ERR', `wrong number of arguments for '${spec.name.toLowerCase()}' command`)
}

/** HELP text: every command, or one. */
export function helpText(name?: string): Reply {
  if (name !== undefined) {
    const spec = commands.get(name.toUpperCase())
    if (spec === undefined) return error('ERR', `unknown command '${name}'`)
    return bulk(`${spec.syntax}\n  ${spec.summary}`)
  }
  return bulk(specs.map((s) => helpLine(s.syntax, s.summary)).join('\n'))
}

/** HELP fits an 80-column terminal: syntax in a column of this width, summaries after it. */
const HELP_COLUMNS = 80
const HELP_SYNTAX_WIDTH = 30

/** One command of the HELP list: a syntax too wide for its column, and summary lines too long, wrap. */
function helpLine(syntax: string, summary: string): string {
  const indent = ' '.repeat(HELP_SYNTAX_WIDTH + 2)
  const lines = wrap(syntax, HELP_COLUMNS)
  const text = wrap(summary, HELP_COLUMNS - indent.length)
  const last = lines[lines.length - 1] as string
  const out = last.length <= HELP_SYNTAX_WIDTH ? [...lines.slice(0, -1), `${last.padEnd(HELP_SYNTAX_WIDTH)}  ${text[0] ?? ''}`] : [...lines, indent + (text[0] ?? '')]
  for (const t of text.slice(1)) out.push(indent + t)
  return out.join('\n')
}

/** `text` in lines of at most `width` characters, broken at spaces (a longer word stands alone). */
function wrap(text: string, width: number): string[] {
  const out: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      out.push(line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  out.push(line)
  return out
}
