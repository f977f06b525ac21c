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
  let watched = new Map<string, number | undefined>()
  let exited = false

  async function runOne(words: readonly string[]): Promise<Reply> {
    const spec = commands.get((words[0] as string).toUpperCase())
    if (spec?.run === undefined) return error('ERR', `unknown command '${words[0] as string}'`)
    try {
      return await spec.run(ctx, words.slice(1))
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
    watched = new Map()
    if (aborted) return error('EXECABORT', 'Transaction discarded because of previous errors.')
    return lock.write(async () => {
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
      const rest = args.slice(1).map((a) => `'${a}'`).join(' ')
      return error('ERR', `unknown command '${args[0] as string}', with args beginning with: ${rest}`)
    }
    const arity = checkArity(spec, args.length)
    if (arity !== undefined) {
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
        watched = new Map()
        return OK
      case 'WATCH':
        if (queue !== undefined) return error('ERR', 'WATCH inside MULTI is not allowed')
        try {
          for (const key of args.slice(1)) if (!watched.has(key)) watched.set(key, await store.version(key))
        } catch (err) {
          return toErrorReply(err)
        }
        return OK
      case 'UNWATCH':
        watched = new Map()
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
    get exited() {
      return exited
    },
  }
}
