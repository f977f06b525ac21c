// The `kvstore-db/level` entry: an abstract-level database backed by kvstore. abstract-level
// is an optional peer dependency: only this entry loads it.
export { KvstoreLevel } from './kvstore-level.js'
export type { KvstoreLevelOptions } from './kvstore-level.js'
