// The command language, a layer above the store: `kvstore-db/commands`. It uses only the
// store's public API (store.ts, errors.ts), so it could live in its own package.
export { createSession } from './session.js'
export type { Session } from './session.js'
export { tokenize, quote } from './tokenizer.js'
export { commands } from './table.js'
export type { CommandSpec, CommandContext } from './table.js'
export type { Reply } from './reply.js'
