// The RESP server, a layer above the store: `kvstore-db/server`. It uses the store only through
// the command language, so it serves a Store and an EtcdStore alike.
export { createServer, KvServer } from './server.js'
export type { ServerAddress, ServerStats, ServerStore } from './server.js'
export type { ServerOptions } from './options.js'
