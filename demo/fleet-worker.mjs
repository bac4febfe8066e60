// The demo's fleet worker: runs 'render' jobs in its thread pool, and says when it starts and stops one.
// argv[2]: JSON { redisPort, name }.
import diagnostics from 'node:diagnostics_channel';
import { worker } from '@heartwire/server';
import { runWorker } from '@heartwire/queue';

const { redisPort, name } = JSON.parse(process.argv[2]);
const say = (event, fields) => process.stdout.write(`${JSON.stringify({ event, worker: name, t: performance.timeOrigin + performance.now(), ...fields })}\n`);
const fleet = runWorker({
  queue: 'render',
  connection: { host: '127.0.0.1', port: redisPort, maxRetriesPerRequest: null },
  jobs: { render: worker(new URL('./fleet-job.mjs', import.meta.url)) },
  concurrency: 2,
  leaseCheckMs: 100,
  pools: { threadPoolSize: 2 },
});
fleet.worker.on('active', (job) => say('start', { scene: job.data.params.scene }));
fleet.worker.on('completed', (job) => say('done', { scene: job.data.params.scene }));
fleet.worker.on('failed', (job, err) => say('failed', { scene: job?.data.params.scene, reason: err.message }));
diagnostics.subscribe('heartwire:queue:job-stop', (m) => say('stop', { code: m.code }));
await fleet.ready;
say('ready', {});
