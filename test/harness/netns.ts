import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Every namespace this harness makes is named `hwns-<pid>-<n>`, so leftovers of a dead run can be found. */
const PREFIX = 'hwns-';
let counter = 0;

/**
 * A network namespace joined to ours by a veth pair: a host on a private /30
 * that a test can make vanish without a FIN or an RST. Only the two addresses
 * of that /30 are used, and `remove()` deletes the namespace and both veth ends.
 */
export interface Netns {
  readonly name: string;
  /** Our end of the pair (root namespace), e.g. 10.217.40.1: servers listen here. */
  readonly hostAddress: string;
  /** The namespace's end, e.g. 10.217.40.2: its processes' source address. */
  readonly peerAddress: string;
  /** The argv prefix that runs a command inside the namespace (`ip netns exec NAME`). */
  readonly exec: readonly string[];
  /**
   * Takes the namespace's end of the link down: from now on nothing crosses
   * in either direction and neither side is told. The root end keeps its
   * route (marked linkdown) and the veth drops what we send, so our
   * retransmissions stay on this machine; taking the root end down instead
   * would remove that route and send them out by the default route.
   */
  cut(): Promise<void>;
  /** Brings the link back up (after `cut()`). */
  restore(): Promise<void>;
  /** Deletes the namespace and the veth pair; safe to call more than once, never throws. */
  remove(): Promise<void>;
}

async function ip(...args: string[]): Promise<string> {
  const { stdout } = await run('ip', args, { timeout: 10_000 });
  return stdout;
}

/**
 * Why namespaces cannot be used here, or undefined when they can: not root,
 * no iproute2, or the kernel refused (a container without CAP_SYS_ADMIN).
 * Makes and removes a probe namespace to find out.
 */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns add)';
  try {
    await ip('-V');
  } catch {
    return 'iproute2 (the ip command) is not installed';
  }
  try {
    const probe = await createNetns();
    await probe.remove();
  } catch (err) {
    return `could not make a network namespace: ${(err as Error).message.trim()}`;
  }
  return undefined;
}

/** Deletes namespaces this harness left behind in runs whose process is gone (killed before its cleanup). */
async function sweepStale(): Promise<void> {
  const list = await ip('netns', 'list').catch(() => '');
  for (const line of list.split('\n')) {
    const match = /^(hwns-(\d+)-\d+)/.exec(line);
    if (match === null || isAlive(Number(match[2]))) continue;
    await ip('netns', 'del', match[1] as string).catch(() => {});
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A /30 in 10.200.0.0–10.254.255.255 that no interface on this machine uses yet: [host, peer]. */
async function freeSubnet(): Promise<[string, string]> {
  const used = `${await ip('-4', '-o', 'addr', 'show')}\n${await ip('-4', 'route', 'show')}`;
  for (let attempt = 0; attempt < 50; attempt++) {
    const b = 200 + Math.floor(Math.random() * 55);
    const c = Math.floor(Math.random() * 256);
    const d = 4 * Math.floor(Math.random() * 64);
    const block = [0, 1, 2, 3].map((i) => `10.${b}.${c}.${d + i}`);
    if (block.some((address) => new RegExp(`\\b${address.replaceAll('.', '\\.')}\\b`).test(used))) continue;
    return [block[1] as string, block[2] as string];
  }
  throw new Error('no free /30 in 10.200.0.0/8 after 50 tries');
}

/** Makes a namespace with a veth pair to ours, both ends up and addressed. Throws (having cleaned up) on failure. */
export async function createNetns(): Promise<Netns> {
  await sweepStale();
  const n = counter++;
  const name = `${PREFIX}${process.pid}-${n}`;
  // Interface names are at most 15 characters.
  const tag = `${process.pid.toString(36)}${n.toString(36)}`;
  const hostIf = `hwh${tag}`;
  const peerIf = `hwp${tag}`;
  const [hostAddress, peerAddress] = await freeSubnet();
  const remove = async (): Promise<void> => {
    // Deleting the namespace destroys its veth end and so the pair, once no process is left in it;
    // deleting our end as well covers a namespace that a process still holds.
    await ip('netns', 'del', name).catch(() => {});
    await ip('link', 'del', hostIf).catch(() => {});
  };
  try {
    await ip('netns', 'add', name);
    await ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', peerIf, 'netns', name);
    await ip('addr', 'add', `${hostAddress}/30`, 'dev', hostIf);
    await ip('link', 'set', hostIf, 'up');
    await ip('-n', name, 'addr', 'add', `${peerAddress}/30`, 'dev', peerIf);
    await ip('-n', name, 'link', 'set', peerIf, 'up');
    await ip('-n', name, 'link', 'set', 'lo', 'up');
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    name,
    hostAddress,
    peerAddress,
    exec: ['ip', 'netns', 'exec', name],
    cut: async () => {
      await ip('-n', name, 'link', 'set', peerIf, 'down');
    },
    restore: async () => {
      await ip('-n', name, 'link', 'set', peerIf, 'up');
    },
    remove,
  };
}
