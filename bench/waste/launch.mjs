// Starts a bench:waste server (argv[2] onwards as server.ts reads them) with tsx registered in this
// thread only. Under `node --import tsx` every worker thread inherits the flag and loads tsx as it
// starts: about 100-150 ms more CPU per new thread here, which the whole-server figure would count
// as heartwire's. A compiled server runs under plain node, as the threads do here.
import { register } from 'tsx/esm/api';

register();
await import('./server.ts');
