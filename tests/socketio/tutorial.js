// The Socket.IO tutorial's chat server (socket.io/docs/v4/tutorial, "Broadcasting"), as the
// tutorial ships it, for im's stock-server tests: `node tutorial.js PORT`.
// The `io.on('connection', ...)` part is the tutorial's, unchanged: no ack callbacks, no rooms,
// no events but `chat message`, default pingInterval/pingTimeout, default transports. Only what
// a test harness must change differs: no express page (the tutorial serves index.html at `/`,
// which no test reads), the port comes from the command line, and the server binds 127.0.0.1.
// With RECOVERY set, the server is the tutorial's later step (connection state recovery).
const { createServer } = require('node:http');
const { Server } = require('socket.io');

const server = createServer();
// RECOVERY=1: the tutorial's "Connection state recovery" step, as it ships it.
const io = new Server(server, process.env.RECOVERY ? { connectionStateRecovery: {} } : {});

io.on('connection', (socket) => {
  socket.on('chat message', (msg) => {
    io.emit('chat message', msg);
  });
});

const port = Number(process.argv[2] || 3000);
server.listen(port, '127.0.0.1', () => {
  console.log(`server running at http://127.0.0.1:${server.address().port}`);
});
