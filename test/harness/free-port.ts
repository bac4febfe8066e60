import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';

/** A loopback port that was free a moment ago, for a server that binds it itself (nginx, redis-server); a lost race is retried there. */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
