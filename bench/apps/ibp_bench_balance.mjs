// Bench app (bench:balance): echo. On a platform started with IBP_BENCH_DELAY_MS in its environment (the slow
// host), each call first waits that many milliseconds (a slow database behind that host, say).
const delayMs = Number(process.env.IBP_BENCH_DELAY_MS) || 0;

export default async function somain(ctx) {
  if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  ctx.respond(ctx.request);
  return 0;
}
