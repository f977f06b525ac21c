// `kvstore serve`: open a store and serve it over RESP until SIGTERM, SIGINT or SHUTDOWN.
import { parseArgs } from 'node:util'
import { StoreError } from '../errors.js'
import type { SyncPolicy } from '../options.js'
import { createServer, type KvServer, type ServerOptions } from '../server/index.js'
import { storeFlags, UsageError } from './args.js'
import { describeLocation, openLocation, STORE_FLAG_OPTIONS, type Location, type OpenStore } from './locations.js'

const EXIT_OK = 0
const EXIT_FAILED = 1
const EXIT_USAGE = 2
const EXIT_OPEN_FAILED = 3

export const SERVE_USAGE = `Usage: kvstore serve [--dir <path> | --file <path> | --etcd <urls>] [options]

Serves a store over RESP, the Redis protocol: redis-cli, redis-benchmark and any
Redis client (RESP2, or RESP3 after HELLO 3) can drive it. With no store option
it serves the directory in $KVSTORE_DIR, or ./.kvstore-data.

Options:
  --dir <path>            persistent store directory (WAL + snapshots)
  --file <path>           snapshot-file store
  --etcd <urls>           an etcd v3 cluster, comma-separated client URLs
  --namespace <p>         with --etcd: prefix of every etcd key the store uses
  --port <n>              TCP port (default 6380; 0 picks a free one)
  --bind <addr>           address to listen on (default 127.0.0.1: loopback)
  --requirepass <secret>  clients must AUTH with it before any other command
  --sync <policy>         always (default): a reply is sent only once the
                          writes before it are fsynced, one fsync per batch
                          of replies (as Redis's appendfsync always);
                          interval | never: replies do not wait
  --read-only             serve a directory as a read-only follower, beside
                          the process that writes it (writes reply READONLY)
  --maxclients <n>        most connections at once (default 10000)
  --timeout <seconds>     close connections idle this long (default 0: never)
  -h, --help              show this help

Once listening it prints "kvstore: listening on <addr>:<port>" on stderr.
SIGTERM, SIGINT or SHUTDOWN stop it gracefully: no new connections, requests
running finish and are answered, the store is flushed and closed, exit 0.

Exit status: 0 stopped cleanly; 1 closing the store failed; 2 usage error;
3 the store could not be opened or the port could not be bound.`


interface ServeArgs {
  location: Location
  defaulted: boolean
  port: number
  bind: string
  sync: SyncPolicy
  readOnly: boolean
  server: ServerOptions
}

function intArg(name: string, text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback
  if (!/^\d{1,9}$/.test(text) || Number(text) > max) throw new UsageError(`--${name} must be an integer from 0 to ${max} (got ${text})`)
  return Number(text)
}

function parseServeArgs(argv: readonly string[]): ServeArgs | 'help' {
  let parsed
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: false,
      strict: true,
      options: {
        ...STORE_FLAG_OPTIONS,
        port: { type: 'string' },
        bind: { type: 'string' },
        requirepass: { type: 'string' },
        maxclients: { type: 'string' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const v = parsed.values
  if (v.help === true) return 'help'
  const flags = storeFlags(v)
  if (flags.sync !== undefined && flags.location.kind === 'file') throw new UsageError('--sync is for directory stores, not --file (a file store has no WAL)')
  const timeout = intArg('timeout', v.timeout, 0, 31_536_000)
  const maxClients = intArg('maxclients', v.maxclients, 10_000, 1_000_000)
  if (maxClients === 0) throw new UsageError('--maxclients must be at least 1')
  const server: ServerOptions = { maxClients, idleTimeoutMs: timeout * 1000 }
  if (v.requirepass !== undefined) {
    if (v.requirepass === '') throw new UsageError('--requirepass needs a non-empty password')
    server.requirepass = v.requirepass
  }
  return {
    location: flags.location,
    defaulted: flags.defaulted,
    readOnly: flags.readOnly,
    port: intArg('port', v.port, 6380, 65_535),
    bind: v.bind ?? '127.0.0.1',
    sync: flags.sync ?? 'always',
    server,
  }
}

function why(err: unknown): string {
  return err instanceof StoreError ? `${err.message} (${err.code})` : err instanceof Error ? err.message : String(err)
}

/** Run `kvstore serve` with the words after `serve`; resolves with the exit status. */
export async function runServe(argv: readonly string[]): Promise<number> {
  let args
  try {
    args = parseServeArgs(argv)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`kvstore serve: ${err.message}\nRun 'kvstore serve --help' for the options.\n`)
      return EXIT_USAGE
    }
    throw err
  }
  if (args === 'help') {
    process.stdout.write(`${SERVE_USAGE}\n`)
    return EXIT_OK
  }
  const { location } = args
  if (args.defaulted) process.stderr.write(`kvstore: using store directory ${describeLocation(location)}\n`)
  // `always` for a directory: the store logs without waiting, and the server flushes once per
  // batch of replies before sending it, so pipelined and concurrent writes share one fsync
  // and no reply (of a write or of a read) is sent before the writes it follows are durable.
  const durable = location.kind === 'dir' && args.sync === 'always' && !args.readOnly
  let store: OpenStore
  try {
    store = await openLocation(location, args.readOnly ? { readOnly: true } : location.kind === 'dir' ? { sync: durable ? 'never' : args.sync } : {})
  } catch (err) {
    process.stderr.write(`kvstore: cannot open ${describeLocation(location)}: ${why(err)}\n`)
    return EXIT_OPEN_FAILED
  }
  let server: KvServer
  try {
    // A file store is made durable by its snapshots and etcd by its own commit: replies need not wait.
    server = createServer(store, { ...args.server, durableReplies: durable })
    const a = await server.listen(args.port, args.bind)
    process.stderr.write(`kvstore: listening on ${a.host}:${a.port} (${describeLocation(location)})\n`)
  } catch (err) {
    process.stderr.write(`kvstore: cannot serve ${describeLocation(location)}: ${why(err)}\n`)
    await store.close().catch(() => undefined)
    return EXIT_OPEN_FAILED
  }
  const stop = (): void => {
    void server.close()
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  await server.closed
  process.off('SIGTERM', stop)
  process.off('SIGINT', stop)
  try {
    await store.close()
  } catch (err) {
    process.stderr.write(`kvstore: closing the store failed: ${why(err)}\n`)
    return EXIT_FAILED
  }
  process.stderr.write('kvstore: stopped\n')
  return EXIT_OK
}
