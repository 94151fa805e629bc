import * as net from 'net';
import { FsError } from '../common/fs-error';
import { logger } from '../common/log';
import { SocketReader } from '../common/socket-reader';
import { WriteHeader, encodeReply, readRequestHead } from '../common/write-stream-protocol';

const log = logger('write-stream');

/** A connection silent this long (ms) is closed: it only reaps clients that vanished. */
const IDLE_TIMEOUT_MS = 5 * 60_000;

/**
 * Receives one write: must read exactly `head.length` bytes of data from `reader` (also when
 * refusing it) and resolve with null or the error to answer. Throwing means the connection is
 * out of step (the reader failed) and is closed.
 */
export type WriteReceiver = (head: WriteHeader, reader: SocketReader) => Promise<unknown>;

export interface WriteStreamServer {
  port: number;
  /** Stops accepting connections and closes the open ones (writes in flight fail). */
  stop(): void;
}

/**
 * The write stream endpoint (server/common/write-stream-protocol.ts) on `host`, any free port:
 * reads requests one after the other from each connection and answers each with `receive`'s
 * outcome.
 */
export function serveWriteStream(host: string, receive: WriteReceiver): Promise<WriteStreamServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    void serveConnection(socket, receive);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new FsError('EIO', `cannot listen for chunk writes on ${host}: ${err.message}`)));
    server.listen(0, host, () => resolve({
      port: (server.address() as net.AddressInfo).port,
      stop: () => {
        server.close();
        for (const s of sockets) s.destroy();
      },
    }));
  });
}

async function serveConnection(socket: net.Socket, receive: WriteReceiver): Promise<void> {
  const peer = `client ${socket.remoteAddress}:${socket.remotePort}`;
  socket.setNoDelay(true);
  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
  const reader = new SocketReader(socket, peer);
  try {
    for (;;) {
      const head = await readRequestHead(reader);
      if (head === null) break;
      socket.write(encodeReply(await receive(head, reader)));
    }
  } catch (err) {
    log.debug(`write stream from ${peer} closed: ${(err as Error).message}`);
  } finally {
    socket.destroy();
  }
}
