// ibp_test_echo: answers with the request message itself (the original's test echo service).
export default function somain(ctx) {
  ctx.respond(ctx.request);
  return 0;
}
