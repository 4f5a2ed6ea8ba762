// Bench app: 1 ms of synchronous work, then echo.
export default function somain(ctx) {
  const end = performance.now() + 1;
  while (performance.now() < end) { /* spin */ }
  ctx.respond(ctx.request);
  return 0;
}
