// Two fake OpenAI upstreams on 127.0.0.1 for the installed-tarball smoke test: the first answers 500, the second a
// chat completion. Shared by esm.mjs and cjs.cjs.
const http = require('node:http');

function listen(handler) {
  return new Promise((resolve) => {
    const server = http.createServer(handler).listen(0, '127.0.0.1', () => {
      resolve({ url: `http://127.0.0.1:${server.address().port}/v1`, close: () => server.close() });
    });
  });
}

exports.startUpstreams = async () => {
  const dead = await listen((_req, res) => {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end('{"error":{"message":"down","type":"server_error"}}');
  });
  const live = await listen((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-1',
          object: 'chat.completion',
          created: 0,
          model: 'gpt-4o-mini',
          choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        }),
      );
    });
  });
  return { dead, live, close: () => (dead.close(), live.close()) };
};
