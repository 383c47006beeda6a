// Socket.IO 4 server for im's interop tests: `node server.js PORT`.
// Event name = channel. A client joins a room with `subscribe` (acked), leaves with
// `unsubscribe`; any other event is relayed to the other members of the room of that name and
// acked. `kick` (sent by a test) makes the server disconnect that socket (packet 41).
// Heartbeat: pingInterval / pingTimeout from PING_INTERVAL / PING_TIMEOUT (ms).
// With REDIS_URL, rooms are shared with the other nodes through @socket.io/redis-adapter.
const { createServer } = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 0);
const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  pingInterval: Number(process.env.PING_INTERVAL || 1000),
  pingTimeout: Number(process.env.PING_TIMEOUT || 1000),
});

io.on("connection", (socket) => {
  socket.on("subscribe", (room, ack) => {
    socket.join(String(room));
    if (typeof ack === "function") ack({ ok: true });
  });
  socket.on("unsubscribe", (room, ack) => {
    socket.leave(String(room));
    if (typeof ack === "function") ack({ ok: true });
  });
  socket.on("kick", () => socket.disconnect(true));
  socket.onAny((event, ...args) => {
    if (event === "subscribe" || event === "unsubscribe" || event === "kick") return;
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    socket.to(event).emit(event, ...args);
    if (ack) ack({ ok: true });
  });
});

async function main() {
  if (process.env.REDIS_URL) {
    const { createAdapter } = require("@socket.io/redis-adapter");
    const { createClient } = require("redis");
    const pub = createClient({ url: process.env.REDIS_URL });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  httpServer.listen(port, "127.0.0.1", () => {
    console.log(`socket.io listening on ${httpServer.address().port}`);
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
