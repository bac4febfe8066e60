// The demo's front server: a heartwire server whose 'render' calls go to the BullMQ fleet.
// argv[2]: JSON { redisPort, port }.
import { Queue } from 'bullmq';
import { createServer } from '@heartwire/server';
import { enqueue } from '@heartwire/queue';

const { redisPort, port } = JSON.parse(process.argv[2]);
const queue = new Queue('render', { connection: { host: '127.0.0.1', port: redisPort } });
queue.on('error', () => {});
const server = createServer({ heartbeatMs: 250, silentMs: 1000 });
server.handle('render', enqueue(queue, { leaseMs: 1500 }));
server.listen(port, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ event: 'listening', port: server.address().port })}\n`));
