import { parseArgs } from 'node:util'
import type { SyncPolicy } from '../options.js'
import { LocationError, parseStoreFlags, STORE_FLAG_OPTIONS, type Location, type StoreFlags } from './locations.js'

/** Parsed command line. */
export interface CliArgs {
  /** Where the store flags point (the default directory when none is given). */
  location: Location
  /** No store flag was given. */
  defaulted: boolean
  sync: SyncPolicy | undefined
  /** `--read-only`: a follower of a directory another process writes. */
  readOnly: boolean
  json: boolean
  /** One-shot commands: from `-c` lines and from trailing words. */
  command: string | undefined
  words: string[]
  help: boolean
  version: boolean
}

/** Thrown for usage errors (exit status 2). */
export class UsageError extends Error {}

/** {@link parseStoreFlags}, with its errors as usage errors. */
export function storeFlags(v: Parameters<typeof parseStoreFlags>[0]): StoreFlags {
  try {
    return parseStoreFlags(v)
  } catch (err) {
    if (err instanceof LocationError) throw new UsageError(err.message)
    throw err
  }
}

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
  --read-only       with a directory: open it as a read-only follower, beside
                    the process that writes it (writes reply READONLY)
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
        ...STORE_FLAG_OPTIONS,
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
  const flags = storeFlags(v)
  if (v.c !== undefined && parsed.positionals.length > 0) throw new UsageError('give -c or command words, not both')
  return {
    location: flags.location,
    defaulted: flags.defaulted,
    sync: flags.sync,
    readOnly: flags.readOnly,
    json: v.json === true,
    command: v.c,
    words: parsed.positionals,
    help: v.help === true,
    version: v.version === true,
  }
}
