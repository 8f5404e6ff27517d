/** The example deployment of docs/workers.md, as config objects. */
export const SHARED = {
  server_name: 'example.org',
  signing_key_path: 'example.org.signing.key',
  database: { name: 'psycopg2', args: { user: 'myelin', database: 'myelin', host: '127.0.0.1' } },
  redis: { enabled: true, host: '127.0.0.1', port: 6379 },
  worker_replication_secret: 'change-me',
  listeners: [
    { port: 8008, bind_addresses: ['127.0.0.1'], type: 'http', x_forwarded: true, resources: [{ names: ['client', 'federation'] }] },
    { port: 9093, bind_address: '127.0.0.1', type: 'http', resources: [{ names: ['replication'] }] },
  ],
  instance_map: {
    main: { host: '127.0.0.1', port: 9093 },
    event_persister1: { host: '127.0.0.1', port: 8034 },
    event_persister2: { host: '127.0.0.1', port: 8035 },
    stream_writer: { host: '127.0.0.1', port: 8036 },
  },
  stream_writers: {
    events: ['event_persister1', 'event_persister2'],
    typing: 'stream_writer',
    to_device: 'stream_writer',
    account_data: 'stream_writer',
    receipts: 'stream_writer',
    presence: 'stream_writer',
  },
  run_background_tasks_on: 'background_worker',
};

const repl = (port: number) => ({ type: 'http', port, bind_address: '127.0.0.1', resources: [{ names: ['replication'] }] });
const client = (port: number) => ({ type: 'http', port, bind_address: '127.0.0.1', x_forwarded: true, resources: [{ names: ['client'] }] });
const pub = (port: number) => ({ type: 'http', port, bind_address: '127.0.0.1', x_forwarded: true, resources: [{ names: ['client', 'federation'] }] });

export const WORKERS: Record<string, Record<string, unknown>> = {
  'generic_worker1.yaml': { worker_app: 'synapse.app.generic_worker', worker_name: 'generic_worker1', worker_listeners: [pub(8081)] },
  'generic_worker2.yaml': { worker_app: 'synapse.app.generic_worker', worker_name: 'generic_worker2', worker_listeners: [pub(8082)] },
  'event_persister1.yaml': { worker_app: 'synapse.app.generic_worker', worker_name: 'event_persister1', worker_listeners: [repl(8034), client(8038)] },
  'event_persister2.yaml': { worker_app: 'synapse.app.generic_worker', worker_name: 'event_persister2', worker_listeners: [repl(8035), client(8039)] },
  'stream_writer.yaml': { worker_app: 'synapse.app.generic_worker', worker_name: 'stream_writer', worker_listeners: [repl(8036), client(8037)] },
  'background_worker.yaml': { worker_app: 'synapse.app.generic_worker', worker_name: 'background_worker' },
};
