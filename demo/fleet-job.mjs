// The demo's fleet job: a CPU-bound loop that never yields, reporting progress every 250 ms.
// Only terminating its thread stops it; the same module would run under a single server's worker(url).
export default function render(params, ctx) {
  const until = Date.now() + params.ms;
  let next = Date.now() + 250;
  let frames = 0;
  while (Date.now() < until) {
    frames++;
    if (Date.now() >= next) {
      ctx.progress({ frames });
      next += 250;
    }
  }
  return { frames, scene: params.scene };
}
