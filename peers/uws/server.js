// A reference chat server for the benchmark: uWebSockets.js (the npm
// package `uwebsockets`, which re-ships the authors' prebuilt binaries),
// speaking the project's protocol: GET /ws/chat/<room>/ joins <room>; every
// {"message": text} a member sends goes to every member of the room, the
// sender included (`app.publish`, not `ws.publish`, which skips the sender),
// in the order this one thread handles them. Rooms are uWS's pub/sub topics.
//
// Settings, stated in the report: no compression; at most 64 KiB per
// message (as our servers); a member's backlog may reach 64 MiB (as our
// servers' 1,024 frames of up to 64 KiB) and a member past it is closed,
// not skipped: uWS's default skips a slow member silently, which our
// servers never do.
'use strict';

const uWS = require('uwebsockets');

const ROOM = /^[A-Za-z0-9_]{1,94}$/;
const MAX_MESSAGE_BYTES = 64 * 1024;
const MAX_BACKLOG_BYTES = 64 * 1024 * 1024;

const [host, port] = (process.env.ADDR || '127.0.0.1:0').split(':');
const decoder = new TextDecoder();

const app = uWS.App().ws('/ws/chat/:room/', {
  compression: uWS.DISABLED,
  maxPayloadLength: MAX_MESSAGE_BYTES,
  maxBackpressure: MAX_BACKLOG_BYTES,
  closeOnBackpressureLimit: true,
  idleTimeout: 0,
  upgrade: (res, req, context) => {
    const room = req.getParameter(0);
    if (!ROOM.test(room)) {
      res.writeStatus('404 Not Found').end('not found\n');
      return;
    }
    res.upgrade(
      { room },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: (ws) => {
    ws.subscribe(ws.getUserData().room);
  },
  message: (ws, message, isBinary) => {
    let text;
    try {
      text = isBinary ? undefined : JSON.parse(decoder.decode(message)).message;
    } catch {
      text = undefined;
    }
    if (typeof text !== 'string') {
      ws.send(JSON.stringify({ error: 'expected a JSON object with a string field "message"' }));
      return;
    }
    app.publish(ws.getUserData().room, JSON.stringify({ message: text }), false);
  },
}).any('/*', (res) => {
  res.writeStatus('404 Not Found').end('not found\n');
}).listen(host, Number(port), (token) => {
  if (!token) {
    console.error(`cannot listen on ${host}:${port}`);
    process.exit(1);
  }
  // The line the benchmark waits for, as our servers print it.
  console.log(`listening on http://${host}:${uWS.us_socket_local_port(token)}`);
});
