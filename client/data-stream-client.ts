import * as net from 'net';
import { FsError } from '../server/common/fs-error';
import { SocketReader, connectWithReader } from '../server/common/socket-reader';
import { ReadHeader, VersionHeader, WriteHeader, encodeReadRequest, encodeVersionRequest, encodeWriteHead, readData, readStatus } from '../server/common/data-stream-protocol';

/** A connection the chunkserver's host refused: nothing was sent (see ChunkClient.openWrite). */
export class ConnectionRefused extends FsError {}

interface Connection {
  socket: net.Socket;
  reader: SocketReader;
}

/**
 * Connections to one chunkserver's data stream endpoint (server/common/data-stream-protocol.ts),
 * kept open between requests and reused, one request at a time on each.
 */
export class DataStreamPool {
  private readonly idle: Connection[] = [];
  private closed = false;

  constructor(
    /** HOST:PORT of the data stream endpoint. */
    readonly dataAddress: string,
    /** The endpoint's identity, sent in every header (see data-stream-protocol.ts). */
    readonly endpoint: number,
    /** Names the replica in errors ("replica HOST:PORT", its gRPC address). */
    readonly peer: string,
  ) {}

  /**
   * Starts a write of `head.length` bytes: send them with send(), then await reply(). Past
   * `deadlineMs` the write fails with ETIMEDOUT and its connection is dropped.
   */
  open(head: WriteHeader, deadlineMs: number): OutgoingWrite {
    return new OutgoingWrite(this, head, deadlineMs);
  }

  /**
   * Reads bytes [head.offset, head.offset + head.length) of a replica (fewer at the end of its
   * data). Past `deadlineMs` the read fails with ETIMEDOUT and its connection is dropped.
   */
  read(head: ReadHeader, deadlineMs: number): Promise<Buffer> {
    return this.exchange(encodeReadRequest(head), deadlineMs, (reader) => readData(reader, head.length));
  }

  /** Sets a replica's version durably (see data-stream-protocol.ts), within `deadlineMs`. */
  async setVersion(head: VersionHeader, deadlineMs: number): Promise<void> {
    await this.exchange(encodeVersionRequest(head), deadlineMs, () => Promise.resolve(undefined));
  }

  /**
   * Sends `request`, reads its status and, on success, the rest of the answer with `answer`.
   * Past `deadlineMs` it fails with ETIMEDOUT and its connection is dropped.
   */
  private async exchange<T>(request: Buffer, deadlineMs: number, answer: (reader: SocketReader) => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const connection = this.take();
    const expired = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new FsError('ETIMEDOUT', `${this.peer} did not answer in time (${deadlineMs} ms)`)), deadlineMs);
    });
    const exchange = connection.then(async (c) => {
      c.socket.ref();
      c.socket.write(request);
      const refused = await readStatus(c.reader);
      return refused ?? (await answer(c.reader));
    });
    let outcome: T | FsError;
    try {
      outcome = await Promise.race([exchange, expired]);
    } catch (err) {
      void connection.then((c) => c.socket.destroy(), () => undefined);
      exchange.catch(() => undefined);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    this.give(await connection); // in step: the whole reply was read, a refusal too
    if (outcome instanceof FsError) throw outcome;
    return outcome;
  }

  /** Closes idle connections; those in use close when their request ends. */
  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.socket.destroy();
  }

  /** @internal An idle connection, or a new one. */
  take(): Promise<Connection> {
    const idle = this.idle.pop();
    if (idle) return Promise.resolve(idle);
    const colon = this.dataAddress.lastIndexOf(':');
    const c = connectWithReader(this.dataAddress.slice(0, colon), Number(this.dataAddress.slice(colon + 1)), this.peer);
    const { socket } = c;
    socket.setNoDelay(true);
    return new Promise((resolve, reject) => {
      const unreachable = (err: NodeJS.ErrnoException): void => {
        const Failure = err.code === 'ECONNREFUSED' ? ConnectionRefused : FsError;
        reject(new Failure('EIO', `${this.peer} unreachable (${err.message})`));
      };
      socket.once('error', unreachable);
      socket.once('connect', () => {
        socket.removeListener('error', unreachable);
        // An idle connection the server closes is dropped.
        socket.once('close', () => {
          const at = this.idle.indexOf(c);
          if (at >= 0) this.idle.splice(at, 1);
        });
        resolve(c);
      });
    });
  }

  /** @internal A connection whose request ended cleanly: kept for the next one. */
  give(c: Connection): void {
    if (this.closed || c.socket.destroyed) return void c.socket.destroy();
    c.socket.unref(); // an idle connection must not keep the process alive
    this.idle.push(c);
  }
}

/** One write in progress on a pooled connection. */
export class OutgoingWrite {
  private readonly connection: Promise<Connection>;
  private readonly failed: Promise<never>;
  private fail!: (err: FsError) => void;
  private failure: FsError | null = null;
  private readonly timer: NodeJS.Timeout;
  private readonly onClose = (): void => this.abort(new FsError('EIO', `${this.pool.peer} closed the connection during a write`));
  private sent = 0;

  constructor(
    private readonly pool: DataStreamPool,
    private readonly head: WriteHeader,
    deadlineMs: number,
  ) {
    this.failed = new Promise<never>((_resolve, reject) => (this.fail = reject));
    this.failed.catch(() => undefined);
    this.timer = setTimeout(() => this.abort(new FsError('ETIMEDOUT', `${pool.peer} did not answer in time (${deadlineMs} ms)`)), deadlineMs);
    this.connection = pool.take().then((c) => {
      c.socket.ref();
      c.socket.on('close', this.onClose);
      if (this.failure) c.socket.destroy();
      else c.socket.write(encodeWriteHead(head));
      return c;
    });
    this.connection.catch((err: FsError) => this.abort(err));
  }

  /**
   * False when the connection was refused (nothing was sent); true once it is made, or once the
   * write has failed otherwise (its deadline, say), which send() and reply() then report.
   */
  refused(): Promise<boolean> {
    return Promise.race([this.connection, this.failed]).then(() => false, (err: unknown) => err instanceof ConnectionRefused);
  }

  /** Sends the next bytes of the data; resolves when the connection can take more. */
  async send(part: Buffer): Promise<void> {
    const { socket } = await Promise.race([this.connection, this.failed]);
    if (this.failure) throw this.failure;
    this.sent += part.length;
    if (this.sent > this.head.length) throw new FsError('EINVAL', `write data passes the ${this.head.length} bytes announced`);
    if (!socket.write(part)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), this.failed]);
  }

  /**
   * Once all the data is sent: resolves when the replica and the rest of its chain have it
   * durably; throws the replica's error (or the connection's) otherwise.
   */
  async reply(): Promise<void> {
    let refused: FsError | null;
    try {
      const c = await Promise.race([this.connection, this.failed]);
      refused = await Promise.race([readStatus(c.reader), this.failed]);
      clearTimeout(this.timer);
      c.socket.removeListener('close', this.onClose);
      this.pool.give(c); // a refused write was read to its end too: the connection is in step
    } catch (err) {
      this.abort(err as FsError);
      throw this.failure ?? err;
    }
    if (refused) throw refused;
  }

  /** Gives up: the connection is closed, so the receiver drops the partial write. */
  abort(err: FsError): void {
    if (this.failure) return;
    this.failure = err;
    clearTimeout(this.timer);
    this.fail(err);
    void this.connection.then((c) => c.socket.destroy(), () => undefined);
  }
}
