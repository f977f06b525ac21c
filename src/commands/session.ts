import { RwLock } from '../rwlock.js'
import { array, error, OK, status, type Reply } from './reply.js'
import { checkArity, commands, helpText, toErrorReply, type CommandContext, type CommandStore } from './table.js'
import { tokenize } from './tokenizer.js'

/** A command session: one client's MULTI/EXEC/WATCH state over a store. */
export interface Session {
  /** Run one command given as words (`['SET', 'a', '1']`). Never rejects: errors are replies. */
  execute(args: readonly string[]): Promise<Reply>
  /** Tokenize a line and run it. An empty line replies `null`. */
  run(line: string): Promise<Reply | null>
  /** True between MULTI and EXEC/DISCARD. */
  readonly inTransaction: boolean
  /**
   * Count a command its caller refused before it reached the session (a server refuses words
   * that are not text): between MULTI and EXEC the transaction then fails with `EXECABORT`,
   * as after an unknown command. Does nothing outside MULTI.
   */
  reject(): void
  /** True once EXIT or QUIT was run. The session does not close the store. */
  readonly exited: boolean
}

// Sessions over the same store share one lock: EXEC holds it exclusively, every other
// command shares it, so a transaction's commands never interleave with another
// session's. Direct library calls on the store are not covered (documented).
const storeLocks = new WeakMap<object, RwLock>()

function lockFor(store: object): RwLock {
  let lock = storeLocks.get(store)
  if (lock === undefined) storeLocks.set(store, (lock = new RwLock()))
  return lock
}

/** One session's WATCH state, as the other sessions of the store see it. */
interface WatchFlag {
  /** Set when a session's command changed one of the watched keys. */
  dirty: boolean
  /** The version of each watched key when WATCH ran. */
  readonly versions: Map<string, number | undefined>
}

/** Per store: watched key -> the sessions watching it (weakly: a dropped session is forgotten). */
type Watchers = Map<string, Set<WeakRef<WatchFlag>>>

// Sessions over the same store share who watches which key. A version compare at EXEC
// alone misses a key created and deleted again after WATCH (absent both times), which
// Redis counts as touched; so after a session's write command names a watched key, the
// key's version is compared with each watcher's, and a watcher that sees another is dirty.
const storeWatchers = new WeakMap<object, Watchers>()

function watchersFor(store: object): Watchers {
  let w = storeWatchers.get(store)
  if (w === undefined) storeWatchers.set(store, (w = new Map()))
  return w
}

interface WatchEntry {
  watchers: Watchers
  keys: Set<string>
  ref: WeakRef<WatchFlag>
}

function forget({ watchers, keys, ref }: WatchEntry): void {
  for (const key of keys) {
    const set = watchers.get(key)
    set?.delete(ref)
    if (set?.size === 0) watchers.delete(key)
  }
  keys.clear()
}

// A session dropped while watching (a client that disconnected) leaves the registry here.
const dropped = new FinalizationRegistry<WatchEntry>(forget)

/**
 * Redis's text for an unknown command: the name (up to 128 chars), then each argument
 * quoted and followed by a space while the list is under 128 chars, each cut to what is
 * left. Redis formats them as C strings, so each also ends at its first NUL.
 */
function unknownCommand(args: readonly string[]): string {
  const c = (s: string, max: number) => s.slice(0, max).split('\0', 1)[0] as string
  let rest = ''
  for (let i = 1; i < args.length && rest.length < 128; i++) rest += `'${c(args[i] as string, 128 - rest.length)}' `
  return `unknown command '${c(args[0] as string, 128)}', with args beginning with: ${rest}`
}

/**
 * Create a session over `store`. Commands follow Redis semantics where Redis has
 * them; replies are structured ({@link Reply}).
 *
 * MULTI queues commands (replying `QUEUED`); a command with an unknown name or wrong
 * arity while queuing makes EXEC fail with `EXECABORT`; errors while running queued
 * commands are per-command replies, as in Redis. EXEC runs the queue while holding the
 * session lock exclusively, so no other session's command runs in between. WATCH
 * records key versions; EXEC replies a null array if any watched key changed.
 *
 * `store` is a `Store`, or any object with the same methods (an `EtcdStore`).
 */
export function createSession(store: CommandStore): Session {
  const ctx: CommandContext = { store }
  const lock = lockFor(store)
  let queue: string[][] | undefined
  let queueError = false
  const watchers = watchersFor(store)
  let watched = new Map<string, number | undefined>()
  let flag: WatchFlag = { dirty: false, versions: watched }
  let entry: WatchEntry = { watchers, keys: new Set(), ref: new WeakRef(flag) }
  let exited = false

  function watchKey(key: string): void {
    if (entry.keys.size === 0) dropped.register(flag, entry, flag)
    entry.keys.add(key)
    let set = watchers.get(key)
    if (set === undefined) watchers.set(key, (set = new Set()))
    set.add(entry.ref)
  }

  function unwatchAll(): void {
    if (entry.keys.size > 0) {
      dropped.unregister(flag)
      forget(entry)
    }
    watched = new Map()
    flag = { dirty: false, versions: watched }
    entry = { watchers, keys: new Set(), ref: new WeakRef(flag) }
  }

  async function runOne(words: readonly string[]): Promise<Reply> {
    const spec = commands.get((words[0] as string).toUpperCase())
    if (spec?.name === 'UNWATCH') return OK
    if (spec?.run === undefined) return error('ERR', `unknown command '${words[0] as string}'`)
    const run = spec.run
    const args = words.slice(1)
    try {
      // Every word may be a key: a word that is not one is compared and found unchanged.
      const keys = watchers.size === 0 || !spec.flags.some((f) => f === 'write' || f === 'admin') ? [] : [...new Set(args)].filter((k) => watchers.has(k))
      if (keys.length === 0) return await run(ctx, args)
      // The handler makes its store calls when run (the server relies on it: see
      // call-order.ts), so the versions are read right after them, and again once it settled
      // (for a handler that awaited before writing).
      const pending = run(ctx, args)
      const atCall = keys.map((k) => store.version(k))
      try {
        return await pending
      } finally {
        const settled = keys.map((k) => store.version(k))
        const seen = await Promise.all([...atCall, ...settled].map((v) => v.catch(() => undefined)))
        keys.forEach((k, i) => {
          for (const ref of watchers.get(k) ?? []) {
            const w = ref.deref()
            if (w === undefined || !w.versions.has(k)) continue
            const at = w.versions.get(k)
            if (seen[i] !== at || seen[keys.length + i] !== at) w.dirty = true
          }
        })
      }
    } catch (err) {
      return toErrorReply(err)
    }
  }

  async function exec(): Promise<Reply> {
    const q = queue ?? []
    const aborted = queueError
    queue = undefined
    queueError = false
    const w = watched
    const dirty = flag.dirty
    unwatchAll()
    if (aborted) return error('EXECABORT', 'Transaction discarded because of previous errors.')
    return lock.write(async () => {
      if (dirty) return array(null)
      for (const [key, version] of w) {
        if ((await store.version(key)) !== version) return array(null)
      }
      const replies: Reply[] = []
      for (const words of q) replies.push(await runOne(words))
      return array(replies)
    })
  }

  async function execute(args: readonly string[]): Promise<Reply> {
    if (args.length === 0) return error('ERR', 'empty command')
    const name = (args[0] as string).toUpperCase()
    const spec = commands.get(name)
    if (spec === undefined) {
      if (queue !== undefined) queueError = true
      return error('ERR', unknownCommand(args))
    }
    const arity = checkArity(spec, args.length)
    if (arity !== undefined) {
      // Redis: a rejected EXEC discards the transaction (if any) and the watches, and says why.
      if (name === 'EXEC') {
        queue = undefined
        queueError = false
        unwatchAll()
        return error('EXECABORT', `Transaction discarded because of: ${arity.type === 'error' ? arity.message : ''}`)
      }
      if (queue !== undefined) queueError = true
      return arity
    }
    switch (name) {
      case 'MULTI':
        if (queue !== undefined) return error('ERR', 'MULTI calls can not be nested')
        queue = []
        return OK
      case 'EXEC':
        if (queue === undefined) return error('ERR', 'EXEC without MULTI')
        return exec()
      case 'DISCARD':
        if (queue === undefined) return error('ERR', 'DISCARD without MULTI')
        queue = undefined
        queueError = false
        unwatchAll()
        return OK
      case 'WATCH':
        if (queue !== undefined) return error('ERR', 'WATCH inside MULTI is not allowed')
        try {
          for (const key of args.slice(1)) {
            if (watched.has(key)) continue
            watched.set(key, await store.version(key))
            watchKey(key)
          }
        } catch (err) {
          return toErrorReply(err)
        }
        return OK
      case 'UNWATCH':
        // Inside MULTI, Redis queues UNWATCH (a no-op by then: EXEC checks the watches first).
        if (queue !== undefined) break
        unwatchAll()
        return OK
      case 'HELP':
        return helpText(args[1])
      case 'EXIT':
      case 'QUIT':
        exited = true
        return status('Goodbye!')
    }
    if (queue !== undefined) {
      queue.push([...args])
      return status('QUEUED')
    }
    return lock.read(() => runOne(args))
  }

  return {
    execute,
    async run(line: string): Promise<Reply | null> {
      let words: string[]
      try {
        words = tokenize(line)
      } catch (err) {
        return toErrorReply(err)
      }
      return words.length === 0 ? null : execute(words)
    },
    get inTransaction() {
      return queue !== undefined
    },
    reject() {
      if (queue !== undefined) queueError = true
    },
    get exited() {
      return exited
    },
  }
}
