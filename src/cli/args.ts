import { parseArgs } from 'node:util'
import type { SyncPolicy } from '../options.js'
import { LocationError, parseEndpoints } from './locations.js'

/** Parsed command line. */
export interface CliArgs {
  dir: string | undefined
  file: string | undefined
  /** `--etcd`: the cluster's client URLs. */
  etcd: string[] | undefined
  /** `--namespace` (only with `--etcd`). */
  namespace: string | undefined
  sync: SyncPolicy | undefined
  json: boolean
  /** One-shot commands: from `-c` lines and from trailing words. */
  command: string | undefined
  words: string[]
  help: boolean
  version: boolean
}

/** Thrown for usage errors (exit status 2). */
export class UsageError extends Error {}

export const USAGE = `Usage: kvstore [--dir <path> | --file <path> | --etcd <urls>] [options]
               [command words...]
       kvstore copy <from> <to> [--force]
       kvstore serve [store option] [--port <n>] [options]

Opens a kvstore and reads commands (type HELP for the list). With no store
option it opens the directory in $KVSTORE_DIR, or ./.kvstore-data.

Options:
  --dir <path>      persistent store directory (WAL + snapshots); also -dir
  --file <path>     snapshot-file mode (one file, no WAL): loaded on start,
                    written by SNAPSHOT and on exit; .json files are JSON,
                    others binary; also -file
  --etcd <urls>     an etcd v3 cluster (EtcdStore): its client URLs, comma-
                    separated, e.g. http://10.0.0.1:2379,http://10.0.0.2:2379
  --namespace <p>   with --etcd: prefix of every etcd key the store uses
                    (default none), so several stores can share one cluster
  --sync <policy>   always (default) | interval | never  (directory mode)
  --json            print one JSON value per reply
  -c <command>      run one command line and exit
  -h, --help        show this help
  -v, --version     print the version

Over etcd the commands are the same; SNAPSHOT needs a path (etcd keeps its own
data) and COMPACT does nothing (etcd compacts its own history). A command the
store refuses replies with the store's error, like any failed command.

kvstore copy copies every key (values, lists, hashes, expiries) from one store
to another: a directory path, file:<path> or etcd://host:port[,...][/namespace].
It replaces the contents of <to>; see kvstore copy --help.

kvstore serve serves the store over RESP (the Redis protocol) to redis-cli,
redis-benchmark and any Redis client; see kvstore serve --help.

Interactive when stdin is a terminal (history, tab completion). Otherwise reads
one command per line and prints one reply per command, with no prompts.

Exit status: 0 ok; 1 a command replied with an error (scripts and one-shot);
2 usage error; 3 the store could not be opened (locked, corrupt, I/O error).`

/** Parse argv (without node and script). The single-dash `-file`/`-dir`/`-sync`/`-json` spellings of the first CLI are accepted. */
export function parseCliArgs(argv: readonly string[]): CliArgs {
  const normalised = argv.map((a) => (a === '-file' ? '--file' : a === '-dir' ? '--dir' : a === '-sync' ? '--sync' : a === '-json' ? '--json' : a))
  let parsed
  try {
    parsed = parseArgs({
      args: normalised,
      allowPositionals: true,
      strict: true,
      options: {
        dir: { type: 'string' },
        file: { type: 'string' },
        etcd: { type: 'string' },
        namespace: { type: 'string' },
        sync: { type: 'string' },
        json: { type: 'boolean', default: false },
        c: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'v', default: false },
      },
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const v = parsed.values
  if ([v.dir, v.file, v.etcd].filter((x) => x !== undefined).length > 1) throw new UsageError('give one of --dir, --file and --etcd')
  if (v.namespace !== undefined && v.etcd === undefined) throw new UsageError('--namespace needs --etcd')
  if (v.sync !== undefined && v.etcd !== undefined) throw new UsageError('--sync is for directory stores, not --etcd (etcd makes every write durable)')
  let etcd: string[] | undefined
  if (v.etcd !== undefined) {
    try {
      etcd = parseEndpoints(v.etcd)
    } catch (err) {
      if (err instanceof LocationError) throw new UsageError(err.message)
      throw err
    }
  }
  if (v.sync !== undefined && !['always', 'interval', 'never'].includes(v.sync)) {
    throw new UsageError(`--sync must be always, interval or never (got ${v.sync})`)
  }
  if (v.c !== undefined && parsed.positionals.length > 0) throw new UsageError('give -c or command words, not both')
  return {
    dir: v.dir,
    file: v.file,
    etcd,
    namespace: v.namespace,
    sync: v.sync as SyncPolicy | undefined,
    json: v.json === true,
    command: v.c,
    words: parsed.positionals,
    help: v.help === true,
    version: v.version === true,
  }
}
