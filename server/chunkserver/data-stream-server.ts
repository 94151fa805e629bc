import * as net from 'net';
import { FsError } from '../common/fs-error';
import { logger } from '../common/log';
import { SocketReader, adoptWithReader } from '../common/socket-reader';
import { ReadHeader, VersionHeader, WriteHeader, encodeDataLength, encodeStatus, readRequest } from '../common/data-stream-protocol';

const log = logger('data-stream');

/** A connection silent this long (ms) is closed: it only reaps clients that vanished. */
const IDLE_TIMEOUT_MS = 5 * 60_000;

/** What serves the requests of the data stream. */
export interface DataStreamHandlers {
  /**
   * Receives one write: must read exactly `head.length` bytes of data from `reader` (also when
   * refusing it) and resolve with null or the error to answer. Throwing means the connection
   * is out of step (the reader failed) and is closed.
   */
  write(head: WriteHeader, reader: SocketReader): Promise<unknown>;
  /** Serves one read: resolves with the data, rejects with the error to answer. */
  read(head: ReadHeader): Promise<Buffer>;
  /** Sets a replica's version durably; rejects with the error to answer. */
  setVersion(head: VersionHeader): Promise<void>;
}

export interface DataStreamServer {
  port: number;
  /** Stops accepting connections and closes the open ones (writes in flight fail). */
  stop(): void;
}

/**
 * The data stream endpoint (server/common/data-stream-protocol.ts) on `host`, any free port:
 * reads requests one after the other from each connection and answers each through `handlers`.
 */
export function serveDataStream(host: string, handlers: DataStreamHandlers): Promise<DataStreamServer> {
  const sockets = new Set<net.Socket>();
  // Paused on connect: adoptWithReader moves the connection to a socket reading through onread.
  const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
    const peer = `client ${accepted.remoteAddress}:${accepted.remotePort}`;
    const { socket, reader } = adoptWithReader(accepted, peer);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    void serveConnection(socket, reader, peer, handlers);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new FsError('EIO', `cannot listen for chunk data on ${host}: ${err.message}`)));
    server.listen(0, host, () => resolve({
      port: (server.address() as net.AddressInfo).port,
      stop: () => {
        server.close();
        for (const s of sockets) s.destroy();
      },
    }));
  });
}

async function serveConnection(socket: net.Socket, reader: SocketReader, peer: string, handlers: DataStreamHandlers): Promise<void> {
  socket.setNoDelay(true);
  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
  try {
    for (;;) {
      const request = await readRequest(reader);
      if (request === null) break;
      if (request.kind === 'write') socket.write(encodeStatus(await handlers.write(request.head, reader)));
      else if (request.kind === 'read') await answerRead(socket, handlers, request.head);
      else socket.write(encodeStatus(await handlers.setVersion(request.head).then(() => null, (err: unknown) => err)));
    }
  } catch (err) {
    log.debug(`data stream from ${peer} closed: ${(err as Error).message}`);
  } finally {
    socket.destroy();
  }
}

/** Sends a read's reply; the next request is read meanwhile (the client sends it after this). */
async function answerRead(socket: net.Socket, handlers: DataStreamHandlers, head: ReadHeader): Promise<void> {
  let data: Buffer;
  try {
    data = await handlers.read(head);
  } catch (err) {
    socket.write(encodeStatus(err));
    return;
  }
  socket.write(Buffer.concat([encodeStatus(null), encodeDataLength(data.length)]));
  socket.write(data);
}
