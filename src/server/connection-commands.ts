// The commands that belong to a connection rather than to the store: AUTH, HELLO, SELECT,
// CLIENT, COMMAND, INFO, QUIT, SHUTDOWN. Everything else goes to the connection's session.
import { createHash, timingSafeEqual } from 'node:crypto'
import { array, bulk, error, integer, NIL, OK, status, type Reply } from '../commands/reply.js'
import { commands } from '../commands/table.js'
import type { Protocol, WireReply } from './resp-encoder.js'

/** What these commands may see and change of the connection they run on. */
export interface ClientHandle {
  readonly id: number
  name: string
  protocol: Protocol
  readonly authenticated: boolean
  /** Mark the connection authenticated (lifts the pre-auth request limits). */
  authenticate(): void
  /** Close the connection once this command's reply is sent. */
  closeAfterReply(): void
  /** One line describing the connection (CLIENT INFO, CLIENT LIST). */
  describe(): string
  readonly server: ServerHandle
}

/** What these commands may see of the server. */
export interface ServerHandle {
  readonly requirepass: string | undefined
  readonly version: string
  /** `# Server`, `# Clients` and `# Stats` lines of INFO. */
  infoSections(): string[][]
  /** One line per connection. */
  clientList(): string[]
  /** Begin a graceful shutdown (SHUTDOWN). */
  shutdown(): void
}

/** A connection command: its reply, or `undefined` for none (SHUTDOWN closes instead). */
type Handler = (client: ClientHandle, args: readonly string[], storeInfo: () => Promise<string>) => WireReply | undefined | Promise<WireReply | undefined>

/** Commands that run before authentication; everything else replies `NOAUTH`. */
export const PRE_AUTH_COMMANDS: ReadonlySet<string> = new Set(['AUTH', 'HELLO', 'QUIT'])

function wrongArity(name: string): Reply {
  return error('ERR', `wrong number of arguments for '${name.toLowerCase()}' command`)
}

/** Constant-time password check: both sides are hashed first so their lengths leak nothing either. */
function passwordMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

/** AUTH's check, shared by AUTH and HELLO … AUTH: the error reply, or undefined when accepted. */
function checkAuth(client: ClientHandle, user: string, password: string): Reply | undefined {
  const expected = client.server.requirepass
  if (expected === undefined) {
    return error('ERR', 'AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?')
  }
  // Only the `default` user exists; its password is compared even for other names so timing says nothing.
  const ok = passwordMatches(password, expected) && user === 'default'
  if (!ok) return error('WRONGPASS', 'invalid username-password pair or user is disabled.')
  client.authenticate()
  return undefined
}

const NAME_OK = /^[!-~]*$/

function setName(client: ClientHandle, name: string): Reply | undefined {
  if (!NAME_OK.test(name)) return error('ERR', 'Client names cannot contain spaces, newlines or special characters.')
  client.name = name
  return undefined
}

const auth: Handler = (client, args) => {
  if (args.length < 2 || args.length > 3) return wrongArity('auth')
  const [user, password] = args.length === 3 ? [args[1] as string, args[2] as string] : ['default', args[1] as string]
  return checkAuth(client, user, password) ?? OK
}

const hello: Handler = (client, args) => {
  let protocol = client.protocol
  let i = 1
  if (args.length > 1) {
    const v = args[1] as string
    if (!/^\d{1,9}$/.test(v)) return error('ERR', 'Protocol version is not an integer or out of range')
    const n = Number(v)
    if (n !== 2 && n !== 3) return error('NOPROTO', 'unsupported protocol version')
    protocol = n
    i = 2
  }
  let name: string | undefined
  for (; i < args.length; i++) {
    const opt = (args[i] as string).toUpperCase()
    if (opt === 'AUTH' && i + 2 < args.length) {
      const refused = checkAuth(client, args[i + 1] as string, args[i + 2] as string)
      if (refused !== undefined) return refused
      i += 2
    } else if (opt === 'SETNAME' && i + 1 < args.length) {
      name = args[++i] as string
    } else {
      return error('ERR', `Syntax error in HELLO option '${args[i] as string}'`)
    }
  }
  if (!client.authenticated) {
    return error(
      'NOAUTH',
      'HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time',
    )
  }
  if (name !== undefined) {
    const refused = setName(client, name)
    if (refused !== undefined) return refused
  }
  client.protocol = protocol
  return {
    type: 'map',
    value: [
      [bulk('server'), bulk('kvstore')],
      [bulk('version'), bulk(client.server.version)],
      [bulk('proto'), integer(protocol)],
      [bulk('id'), integer(client.id)],
      [bulk('mode'), bulk('standalone')],
      [bulk('role'), bulk('master')],
      [bulk('modules'), array([])],
    ],
  }
}

const select: Handler = (_client, args) => {
  if (args.length !== 2) return wrongArity('select')
  const v = args[1] as string
  if (!/^-?\d{1,18}$/.test(v)) return error('ERR', 'value is not an integer or out of range')
  // One keyspace: database 0. Clients that select it by habit (ioredis `db: 0`) work.
  return Number(v) === 0 ? OK : error('ERR', 'DB index is out of range')
}

const client: Handler = (c, args) => {
  const sub = (args[1] ?? '').toUpperCase()
  switch (sub) {
    case 'SETNAME':
      if (args.length !== 3) return wrongArity('client|setname')
      return setName(c, args[2] as string) ?? OK
    case 'GETNAME':
      return c.name === '' ? NIL : bulk(c.name)
    case 'ID':
      return integer(c.id)
    case 'INFO':
      return bulk(`${c.describe()}\n`)
    case 'LIST':
      return bulk(c.server.clientList().map((l) => `${l}\n`).join(''))
    case 'SETINFO':
      // Client libraries announce their name and version; accepted and not kept.
      return args.length === 4 ? OK : wrongArity('client|setinfo')
    default:
      return error('ERR', `unknown subcommand '${args[1] ?? ''}'. Try CLIENT HELP.`)
  }
}

/** `COMMAND` info of one command, in the Redis 2.8 shape every client understands. */
function commandInfo(name: string, arity: number, flags: readonly string[]): Reply {
  const keyed = !flags.includes('session') && !flags.includes('admin') && !['PING', 'ECHO', 'DBSIZE', 'FLUSHDB', 'INFO', 'KEYS', 'RANGE'].includes(name)
  return array([
    bulk(name.toLowerCase()),
    integer(arity),
    array(flags.map((f) => status(f))),
    integer(keyed ? 1 : 0),
    integer(keyed ? (name === 'MSET' || name === 'MGET' || name === 'DEL' || name === 'EXISTS' ? -1 : 1) : 0),
    integer(keyed ? (name === 'MSET' ? 2 : 1) : 0),
  ])
}

/** Every command the server answers, with its arity and flags. */
function allCommands(): [string, number, readonly string[]][] {
  const out: [string, number, readonly string[]][] = []
  for (const spec of commands.values()) if (spec.name !== 'EXIT') out.push([spec.name, spec.arity, spec.flags])
  for (const [name, arity] of CONNECTION_ARITY) out.push([name, arity, ['connection']])
  return out
}

const CONNECTION_ARITY: [string, number][] = [
  ['AUTH', -2], ['HELLO', -1], ['SELECT', 2], ['CLIENT', -2], ['COMMAND', -1], ['INFO', -1], ['QUIT', -1], ['SHUTDOWN', -1],
]

const command: Handler = (_c, args) => {
  const sub = (args[1] ?? '').toUpperCase()
  const all = allCommands()
  switch (sub) {
    case '':
      return array(all.map(([n, a, f]) => commandInfo(n, a, f)))
    case 'COUNT':
      return integer(all.length)
    case 'LIST':
      return array(all.map(([n]) => bulk(n.toLowerCase())))
    case 'INFO': {
      const byName = new Map(all.map((c) => [c[0], c]))
      return array(args.slice(2).map((n) => {
        const c = byName.get(n.toUpperCase())
        return c === undefined ? array(null) : commandInfo(c[0], c[1], c[2])
      }))
    }
    case 'DOCS':
      // No docs: clients (redis-cli's hints) fall back to their own.
      return { type: 'map', value: [] }
    default:
      return error('ERR', `unknown subcommand '${args[1] as string}'. Try COMMAND HELP.`)
  }
}

const info: Handler = async (c, args, storeInfo) => {
  const wanted = args.slice(1).map((s) => s.toLowerCase())
  const all = wanted.length === 0 || wanted.some((w) => w === 'all' || w === 'everything' || w === 'default')
  const sections = [...c.server.infoSections()]
  let current: string[] | undefined
  for (const l of (await storeInfo()).split('\n')) {
    if (l.startsWith('# ')) sections.push((current = [l]))
    else if (current !== undefined && l !== '') current.push(l)
  }
  const chosen = sections.filter((s) => all || wanted.includes((s[0] as string).slice(2).toLowerCase()))
  // Redis ends INFO lines with CRLF; clients (ioredis's ready check) split on it.
  return bulk(chosen.map((s) => `${s.join('\r\n')}\r\n`).join('\r\n'))
}

const quit: Handler = (c) => {
  c.closeAfterReply()
  return OK
}

const shutdown: Handler = (c, args) => {
  const opts = args.slice(1).map((a) => a.toUpperCase())
  if (opts.some((o) => !['NOSAVE', 'SAVE', 'NOW', 'FORCE', 'ABORT'].includes(o))) return error('ERR', 'syntax error')
  if (opts.includes('ABORT')) return error('ERR', 'No shutdown in progress.')
  // Writes are already in the WAL: SAVE and NOSAVE both close the store cleanly (flush, fsync).
  c.closeAfterReply()
  c.server.shutdown()
  return undefined
}

/** Connection commands by upper-case name. `EXIT` is the CLI's word for QUIT. */
export const CONNECTION_COMMANDS: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ['AUTH', auth],
  ['HELLO', hello],
  ['SELECT', select],
  ['CLIENT', client],
  ['COMMAND', command],
  ['INFO', info],
  ['QUIT', quit],
  ['EXIT', quit],
  ['SHUTDOWN', shutdown],
])
