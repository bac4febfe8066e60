import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** PEM text of the keys and certificates a TLS test needs. */
export interface TestCertificates {
  /** The test CA that signs the server and the good client. */
  readonly ca: string;
  /** For 127.0.0.1 and localhost (subjectAltName), signed by `ca`. */
  readonly serverKey: string;
  readonly serverCert: string;
  /** A client certificate signed by `ca`, CN `client-ok`. */
  readonly clientKey: string;
  readonly clientCert: string;
  /** A client certificate signed by another CA the server does not trust, CN `client-rogue`. */
  readonly rogueKey: string;
  readonly rogueCert: string;
}

/**
 * Makes a CA, a server certificate and two client certificates with the
 * openssl command line, in a fresh temporary directory that is removed
 * before returning. EC P-256 keys: quick to make and to use.
 */
export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'heartwire-certs-'));
  const path = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const selfSignedCa = (name: string, cn: string): void => {
    openssl('req', '-x509', ...key, '-keyout', path(`${name}.key`), '-out', path(`${name}.crt`), '-days', '2', '-subj', `/CN=${cn}`);
  };
  const signed = (name: string, cn: string, ca: string, extensions: string): void => {
    writeFileSync(path(`${name}.ext`), extensions);
    openssl('req', ...key, '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`), '-subj', `/CN=${cn}`);
    openssl(
      'x509', '-req', '-in', path(`${name}.csr`), '-CA', path(`${ca}.crt`), '-CAkey', path(`${ca}.key`),
      '-CAcreateserial', '-out', path(`${name}.crt`), '-days', '2', '-extfile', path(`${name}.ext`),
    );
  };
  try {
    selfSignedCa('ca', 'heartwire test CA');
    selfSignedCa('rogue-ca', 'rogue CA');
    signed('server', 'localhost', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    signed('client', 'client-ok', 'ca', 'extendedKeyUsage=clientAuth\n');
    signed('rogue', 'client-rogue', 'rogue-ca', 'extendedKeyUsage=clientAuth\n');
    const read = (name: string): string => readFileSync(path(name), 'utf8');
    return {
      ca: read('ca.crt'),
      serverKey: read('server.key'),
      serverCert: read('server.crt'),
      clientKey: read('client.key'),
      clientCert: read('client.crt'),
      rogueKey: read('rogue.key'),
      rogueCert: read('rogue.crt'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
