// The client side of `pnpm bench:detect`, one process per trial so that it can be killed, frozen
// or cut off for real. argv[2]: JSON { port, host, system, channelOptions?, jobPath? }.
// Commands arrive as JSON lines on stdin: start { job }, cancel, close, clock { n }. Each line printed
// on stdout carries `t`, this process's clock as epoch ms (performance.timeOrigin + performance.now()),
// which the orchestrator maps onto its own with the clock echo.
import { once } from 'node:events';
import net from 'node:net';
import { createInterface } from 'node:readline';

const { system, host, port, channelOptions, jobPath } = JSON.parse(process.argv[2]);
const epochNow = () => performance.timeOrigin + performance.now();
const print = (event, fields = {}) => process.stdout.write(`${JSON.stringify({ event, t: epochNow(), ...fields })}\n`);

/** Per system: start the job call, cancel it, and close the connection (FIN) the way that library's users would. */
async function open() {
  if (system === 'heartwire') {
    const { connect } = await import('@heartwire/client');
    const client = await connect({ host, port });
    const controller = new AbortController();
    return {
      start: (job) => client.call('job', job, { signal: controller.signal, onProgress: () => {} }).catch(() => {}),
      cancel: () => controller.abort(),
      close: () => client.close(),
    };
  }
  if (system === 'grpc-js') {
    // grpc-js has no call that closes a connection with a call in flight (client.close() waits for
    // the calls), so the FIN is sent on its TCP socket, which it opens with net.connect: keep it.
    const sockets = [];
    const netConnect = net.connect;
    net.connect = (...args) => {
      const socket = netConnect(...args);
      sockets.push(socket);
      return socket;
    };
    const grpc = await import('@grpc/grpc-js');
    const client = new grpc.Client(`${host}:${port}`, grpc.credentials.createInsecure(), channelOptions);
    await new Promise((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
    let call;
    const bytes = (b) => b;
    return {
      start: (job) => {
        call = client.makeServerStreamRequest(jobPath, bytes, bytes, Buffer.from(JSON.stringify(job)));
        call.on('data', () => {});
        call.on('error', () => {});
      },
      cancel: () => call.cancel(),
      close: () => {
        for (const socket of sockets) socket.end();
      },
    };
  }
  // bare-net: one JSON line starts the job; TCP has no cancel message, so cancelling is hanging up.
  const socket = net.connect({ host, port, noDelay: true });
  await once(socket, 'connect');
  socket.on('data', () => {});
  socket.on('error', () => {});
  return {
    start: (job) => socket.write(`${JSON.stringify(job)}\n`),
    cancel: () => socket.end(),
    close: () => socket.end(),
  };
}

const client = await open();
print('ready');

const commands = {
  start({ job }) {
    client.start(job);
  },
  cancel() {
    const t = epochNow();
    client.cancel();
    print('fault', { t });
  },
  close() {
    const t = epochNow();
    client.close();
    print('fault', { t });
  },
  // Echoes our clock, so that the orchestrator can map it onto its own.
  clock({ n }) {
    print('clock', { n });
  },
};

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line);
  commands[command.cmd](command);
});
