// Bench app: waits 20 ms (an I/O-bound transaction: a database call, say), then echo.
export default async function somain(ctx) {
  await new Promise((r) => setTimeout(r, 20));
  ctx.respond(ctx.request);
  return 0;
}
