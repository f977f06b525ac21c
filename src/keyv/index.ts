// The `kvstore-db/keyv` entry: a keyv storage adapter. keyv itself is an optional peer
// dependency, needed only for its types; the adapter uses no keyv code at run time.
export { KeyvKvstore } from './keyv-kvstore.js'
export type { KeyvKvstoreOpts } from './keyv-kvstore.js'
