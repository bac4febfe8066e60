// A client of `pnpm bench:waste`, in its own process so the bench can kill or freeze it for real.
// argv[2]: JSON { system, port, job, grpcPath, grpcOptions }. stdin: "go" starts the call,
// "cancel" cancels it through the client's API. stdout: JSON lines "ready", then "started" with
// the job's { tid } from the server's first message.
import net from 'node:net';
import { createInterface } from 'node:readline';

const { system, port, job, grpcPath, grpcOptions } = JSON.parse(process.argv[2]);
const print = (event, fields) => process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
let started = false;
const onStarted = (first) => {
  if (started) return;
  started = true;
  print('started', first);
};

let go;
let cancel = () => {};
if (system === 'naive-net') {
  const socket = net.connect({ host: '127.0.0.1', port }, () => print('ready'));
  socket.on('error', () => {});
  socket.on('data', (chunk) => started || onStarted(JSON.parse(chunk.toString().split('\n', 1)[0])));
  go = () => socket.write(`${JSON.stringify(job)}\n`);
} else if (system === 'grpc-js') {
  // Each client loads only its own library: a killed process's kernel frees its memory before its
  // FIN leaves, so a client carrying another system's modules would be detected later.
  const grpc = await import('@grpc/grpc-js');
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), grpcOptions);
  client.waitForReady(Date.now() + 10_000, (err) => (err ? process.exit(1) : print('ready')));
  go = () => {
    const bytes = (b) => b;
    const call = client.makeServerStreamRequest(grpcPath, bytes, bytes, Buffer.from(JSON.stringify(job)));
    call.on('data', (bytes) => started || onStarted(JSON.parse(bytes.toString())));
    call.on('error', () => {});
    cancel = () => call.cancel();
  };
} else {
  const { connect } = await import('@heartwire/client');
  const client = await connect({ host: '127.0.0.1', port });
  print('ready');
  go = () => {
    const controller = new AbortController();
    client.call('job', job, { signal: controller.signal, onProgress: onStarted }).catch(() => {});
    cancel = () => controller.abort();
  };
}

createInterface({ input: process.stdin }).on('line', (line) => (line === 'go' ? go() : line === 'cancel' ? cancel() : undefined));
