// Socket.IO 4 server for im's interop tests: `node server.js PORT`.
// Event name = channel. A client joins a room with `subscribe` (acked), leaves with
// `unsubscribe`; any other event is relayed to the other members of the room of that name and
// acked. `kick` (sent by a test) makes the server disconnect that socket (packet 41).
// Heartbeat: pingInterval / pingTimeout from PING_INTERVAL / PING_TIMEOUT (ms).
// With REDIS_URL, rooms are shared with the other nodes through @socket.io/redis-adapter.
// With REDIS_URL and RECOVERY=1 they are shared through @socket.io/redis-streams-adapter, and
// connection state recovery is on (`connectionStateRecovery: {}`, Socket.IO's defaults): the
// adapter keeps every broadcast in a Redis stream, and a disconnected socket's session (rooms,
// last offset) is written to Redis when it disconnects, so any node can restore it.
// SIGTERM shuts down gracefully (as a deploy or a rolling restart would): every socket is
// disconnected ("server shutting down", a recoverable reason), the sessions are written, then
// the process exits.
const { createServer } = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 0);
const recovery = Boolean(process.env.RECOVERY);
const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  pingInterval: Number(process.env.PING_INTERVAL || 1000),
  pingTimeout: Number(process.env.PING_TIMEOUT || 1000),
  ...(recovery ? { connectionStateRecovery: {} } : {}),
});
let redisClients = [];

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
  if (process.env.REDIS_URL && recovery) {
    const { createAdapter } = require("@socket.io/redis-streams-adapter");
    const { createClient } = require("redis");
    const client = createClient({ url: process.env.REDIS_URL });
    await client.connect();
    redisClients = [client];
    io.adapter(createAdapter(client));
  } else if (process.env.REDIS_URL) {
    const { createAdapter } = require("@socket.io/redis-adapter");
    const { createClient } = require("redis");
    const pub = createClient({ url: process.env.REDIS_URL });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    redisClients = [pub, sub];
    io.adapter(createAdapter(pub, sub));
  }
  httpServer.listen(port, "127.0.0.1", () => {
    console.log(`socket.io listening on ${httpServer.address().port}`);
  });
}

process.on("SIGTERM", () => {
  // Disconnecting the sockets queues their sessions' writes on the Redis connection; QUIT is
  // queued after them, so the process exits once they are stored.
  io.close(() => {
    Promise.all(redisClients.map((c) => c.quit())).finally(() => process.exit(0));
  });
});

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
