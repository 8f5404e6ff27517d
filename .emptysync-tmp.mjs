// Empty incremental syncs (nothing new, timeout=0) and one-new-event syncs: server CPU per request.
import { HttpClient, MatrixApi } from './dist/bench/client.js';
import { readFileSync } from 'node:fs';
const [base, secret, pid] = process.argv.slice(2);
const tck = 100;
const cpu = () => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 1000 / tck; };
const api = new MatrixApi(new HttpClient(base));
const u = await api.registerWithSharedSecret(secret, 'es' + Date.now().toString(36), 'pw12345678');
const h = api.http;
const rooms = [];
for (let i = 0; i < 5; i++) rooms.push(await api.createRoom(u, { preset: 'public_chat' }));
let r = await h.request('GET', '/_matrix/client/v3/sync', { token: u.accessToken, query: { timeout: 0 } });
let since = r.body.next_batch;
const N = 2000;
let c0 = cpu(), t0 = performance.now();
for (let i = 0; i < N; i++) await h.request('GET', '/_matrix/client/v3/sync', { token: u.accessToken, query: { since, timeout: 0 } });
let c1 = cpu();
console.log('empty incremental sync: cpu ms/req', ((c1 - c0) / N).toFixed(3), 'wall ms/req', ((performance.now() - t0) / N).toFixed(3));
const M = 300; let cs = 0, cr = 0;
for (let i = 0; i < M; i++) {
  const a = cpu();
  await h.request('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(rooms[i % 5])}/send/m.room.message/t${i}`, { token: u.accessToken, body: { msgtype: 'm.text', body: 'x' + i } });
  const b = cpu();
  r = await h.request('GET', '/_matrix/client/v3/sync', { token: u.accessToken, query: { since, timeout: 0 } });
  since = r.body.next_batch;
  cs += b - a; cr += cpu() - b;
}
console.log('incremental sync with 1 new event: cpu ms/req', (cr / M).toFixed(3), ' (send cpu ms', (cs / M).toFixed(3), ')');
