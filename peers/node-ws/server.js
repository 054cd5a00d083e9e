// A reference chat server for the benchmark: Node.js with `ws`, speaking
// the project's protocol: GET /ws/chat/<room>/ joins <room>; every
// {"message": text} a member sends goes to every member of the room, the
// sender included, in the order this one thread handles them.
//
// Idiomatic `ws`: an http server, `handleUpgrade` on a path the server
// checks, a Set of sockets per room, `send` to each. `ws` never drops a
// frame: what a slow member cannot take waits in its `bufferedAmount`.
'use strict';

const http = require('http');
const { WebSocketServer } = require('ws');

const ROOM_PATH = /^\/ws\/chat\/([A-Za-z0-9_]{1,94})\/(\?.*)?$/;
const MAX_MESSAGE_BYTES = 64 * 1024;

const [host, port] = (process.env.ADDR || '127.0.0.1:0').split(':');
const rooms = new Map();
const server = http.createServer((req, res) => {
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
});
const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false });

server.on('upgrade', (req, socket, head) => {
  const match = ROOM_PATH.exec(req.url);
  if (!match) {
    socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 10\r\n\r\nnot found\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => join(match[1], ws));
});

function join(name, ws) {
  let room = rooms.get(name);
  if (!room) {
    room = new Set();
    rooms.set(name, room);
  }
  room.add(ws);
  ws.on('message', (data, isBinary) => {
    let text;
    try {
      text = isBinary ? undefined : JSON.parse(data.toString('utf8')).message;
    } catch {
      text = undefined;
    }
    if (typeof text !== 'string') {
      ws.send(JSON.stringify({ error: 'expected a JSON object with a string field "message"' }));
      return;
    }
    const frame = JSON.stringify({ message: text });
    for (const member of room) {
      member.send(frame);
    }
  });
  ws.on('close', () => {
    room.delete(ws);
    if (room.size === 0) {
      rooms.delete(name);
    }
  });
  ws.on('error', () => {});
}

server.listen(Number(port), host, () => {
  const { address, port: bound } = server.address();
  // The line the benchmark waits for, as our servers print it.
  console.log(`listening on http://${address}:${bound}`);
});
