// The `kvstore-db/etcd` entry: the Store API on an etcd v3 cluster. A layer beside the
// embedded store; importing it pulls in nothing of the directory engine.
export { EtcdStore } from './store.js'
export type { EtcdStoreOptions } from './store.js'
